"""Gmail drafts through the real google-api-python-client against a contract-checking fake."""

from __future__ import annotations

import json
from email import policy
from email.parser import BytesParser
from pathlib import Path

import asyncpg
import pytest
from temporalio.exceptions import ApplicationError

from activities.channels.gmail import GmailConfig
from activities.deliveries import ChannelsConfig, DeliveryActivities
from domain.delivery import DeliveryRequest
from stack.settings import Settings
from tests.adapters.conftest import env_at
from tests.fakes.google_api import GmailFake, google_error


def churn_alert(key: str = "account-acme:churn_alert:2026-11-03") -> DeliveryRequest:
    return DeliveryRequest(
        idempotency_key=key,
        account_id="acme",
        kind="email_draft",
        purpose="churn_alert",
        to="jordan.park@vendor.example",
        to_name="Jordan Park",
        subject="Churn risk HIGH: Acme Corp (renewal in 48 days)",
        markdown="Acme Corp scores 38/100 (RED).\n\n- active users fell from 41 to 18 in 30 days\n",
    )


def acts(
    pool: asyncpg.Pool, settings: Settings, fake: GmailFake, **over: object
) -> DeliveryActivities:
    cfg = GmailConfig(token=fake.token, base_url=fake.url, timeout_s=0.5)
    cfg = GmailConfig(**{**cfg.__dict__, **over})
    return DeliveryActivities(pool, settings, ChannelsConfig(gmail=cfg))


async def test_creates_a_draft_never_sends(
    pool: asyncpg.Pool, settings: Settings, gmail_fake: GmailFake
) -> None:
    res = await env_at().run(acts(pool, settings, gmail_fake).deliver, churn_alert())
    assert (res.channel, res.status, res.external_id, res.target) == (
        "gmail",
        "delivered",
        "r-1",
        "jordan.park@vendor.example",
    )
    assert res.note == "draft only, not sent"
    (draft,) = gmail_fake.drafts
    msg = draft["message"]
    assert msg["To"] == "Jordan Park <jordan.park@vendor.example>"
    assert msg["Subject"] == "Churn risk HIGH: Acme Corp (renewal in 48 days)"
    assert msg["X-VIM-Idempotency-Key"] == "account-acme:churn_alert:2026-11-03"
    assert "active users fell from 41 to 18" in msg.get_content()
    (req,) = gmail_fake.calls("POST")
    assert req.path == "/gmail/v1/users/me/drafts"
    assert all("send" not in r.path for r in gmail_fake.requests)


async def test_duplicate_makes_no_second_draft(
    pool: asyncpg.Pool, settings: Settings, gmail_fake: GmailFake
) -> None:
    a = acts(pool, settings, gmail_fake)
    await env_at().run(a.deliver, churn_alert())
    again = await env_at(2).run(a.deliver, churn_alert())
    assert again.duplicate and again.external_id == "r-1"
    assert len(gmail_fake.drafts) == 1 and len(gmail_fake.calls("POST")) == 1
    assert await pool.fetchval("SELECT count(*) FROM deliveries") == 1


async def test_draft_created_before_a_crash_is_found_by_message_id(
    pool: asyncpg.Pool, settings: Settings, gmail_fake: GmailFake
) -> None:
    a = acts(pool, settings, gmail_fake)
    await env_at().run(a.deliver, churn_alert())
    await pool.execute("UPDATE deliveries SET status = 'pending'")
    again = await env_at(2).run(a.deliver, churn_alert())
    assert again.external_id == "r-1" and "earlier attempt" in (again.note or "")
    assert len(gmail_fake.drafts) == 1
    (lookup,) = gmail_fake.calls("GET")
    assert lookup.query["q"][0].startswith("rfc822msgid:")


@pytest.mark.parametrize(
    "status, reason, expected",
    [
        (400, "invalidArgument", "check the recipient address"),
        (401, "authError", "401 invalid credentials"),
        (
            403,
            "insufficientPermissions",
            "grant the https://www.googleapis.com/auth/gmail.compose scope",
        ),
        (404, "notFound", "check GMAIL_USER"),
    ],
)
async def test_client_errors_name_the_fix(
    pool: asyncpg.Pool,
    settings: Settings,
    gmail_fake: GmailFake,
    status: int,
    reason: str,
    expected: str,
) -> None:
    gmail_fake.fail(status, google_error(status, reason=reason))
    with pytest.raises(ApplicationError) as err:
        await env_at().run(acts(pool, settings, gmail_fake).deliver, churn_alert())
    assert (
        err.value.non_retryable
        and err.value.message.startswith(f"Gmail: {status}")
        and expected in err.value.message
    )
    if status == 401:
        assert "refresh GMAIL_TOKEN" in err.value.message
    assert gmail_fake.token not in err.value.message
    assert await pool.fetchval("SELECT status FROM deliveries") == "failed"


@pytest.mark.parametrize(
    "status, reason",
    [
        (429, "rateLimitExceeded"),
        (403, "userRateLimitExceeded"),
        (500, "backendError"),
        (503, "backendError"),
    ],
)
async def test_rate_limits_and_server_errors_are_retryable(
    pool: asyncpg.Pool, settings: Settings, gmail_fake: GmailFake, status: int, reason: str
) -> None:
    gmail_fake.fail(status, google_error(status, reason=reason))
    a = acts(pool, settings, gmail_fake)
    with pytest.raises(ApplicationError) as err:
        await env_at().run(a.deliver, churn_alert())
    assert not err.value.non_retryable and err.value.message.startswith(f"Gmail: {status}")
    res = await env_at(2).run(a.deliver, churn_alert())
    assert res.status == "delivered" and len(gmail_fake.drafts) == 1


async def test_timeout_is_retryable(
    pool: asyncpg.Pool, settings: Settings, gmail_fake: GmailFake
) -> None:
    gmail_fake.hang(2.0)
    with pytest.raises(ApplicationError) as err:
        await env_at().run(acts(pool, settings, gmail_fake, timeout_s=0.3).deliver, churn_alert())
    assert not err.value.non_retryable and "timed out" in err.value.message


async def test_service_account_with_delegation(
    pool: asyncpg.Pool, settings: Settings, gmail_fake: GmailFake, tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    sa = tmp_path / "sa.json"
    sa.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "p",
                "private_key_id": "k1",
                "private_key": pem,
                "client_email": "vim@p.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": gmail_fake.url + "/token",
            }
        )
    )
    cfg = GmailConfig(
        credentials_file=str(sa), user="csm@vendor.example", base_url=gmail_fake.url, timeout_s=2
    )
    res = await env_at().run(
        DeliveryActivities(pool, settings, ChannelsConfig(gmail=cfg)).deliver, churn_alert()
    )
    assert res.channel == "gmail" and gmail_fake.token_requests == 1
    assert (
        gmail_fake.calls("POST", "/drafts")[0].path == "/gmail/v1/users/csm%40vendor.example/drafts"
    )


async def test_without_credentials_the_draft_is_an_eml_in_the_outbox(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    a = DeliveryActivities(pool, settings, ChannelsConfig())
    res = await env_at().run(a.deliver, churn_alert())
    assert res.channel == "outbox" and (res.note or "").startswith(
        "no GMAIL_TOKEN or GOOGLE_APPLICATION_CREDENTIALS: wrote "
    )
    (eml,) = list((settings.outbox_dir / "email").glob("*.eml"))
    msg = BytesParser(policy=policy.default).parsebytes(eml.read_bytes())
    assert msg["To"] == "Jordan Park <jordan.park@vendor.example>" and msg["X-Unsent"] == "1"
    assert msg["X-VIM-Idempotency-Key"] == "account-acme:churn_alert:2026-11-03"
    # A retry after a crash overwrites the same file rather than adding one.
    await pool.execute("UPDATE deliveries SET status = 'pending'")
    await env_at(2).run(a.deliver, churn_alert())
    assert len(list((settings.outbox_dir / "email").iterdir())) == 1


def test_service_account_without_mailbox_is_not_configured() -> None:
    assert not GmailConfig.from_env({"GOOGLE_APPLICATION_CREDENTIALS": "/x.json"}).configured
    assert GmailConfig.from_env(
        {"GOOGLE_APPLICATION_CREDENTIALS": "/x.json", "GMAIL_USER": "a@b.co"}
    ).configured
    assert GmailConfig.from_env({"GMAIL_TOKEN": "t" * 20}).configured
