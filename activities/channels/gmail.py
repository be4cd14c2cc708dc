"""Gmail: drafts only (``users.drafts.create``, gmail.compose scope). Never sends.

google-api-python-client with the static discovery document shipped in the
package (no network at build time); ``GMAIL_BASE_URL`` replaces the root URL
through ``client_options.api_endpoint``, so the same code talks to a local
fake in tests. The client is synchronous (httplib2), so calls run in a thread.

Credentials: ``GMAIL_TOKEN`` (an OAuth access token with gmail.compose), or a
service account from ``GOOGLE_APPLICATION_CREDENTIALS`` with domain-wide
delegation impersonating ``GMAIL_USER``.

Idempotency: the MIME message carries ``X-VIM-Idempotency-Key`` and a
Message-ID derived from the key; when an earlier attempt may have created
the draft, ``drafts.list(q="rfc822msgid:...")`` finds it instead of making a
second one.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formataddr
from typing import Any

from temporalio.exceptions import ApplicationError

from activities.channels.errors import by_status, redact, rejected, retry_after_seconds, retryable
from domain.delivery import DeliveryRequest, render_sections_markdown

CHANNEL = "Gmail"
COMPOSE_SCOPE = "https://www.googleapis.com/auth/gmail.compose"


@dataclass(frozen=True)
class GmailConfig:
    token: str | None = field(default=None, repr=False)
    credentials_file: str | None = None
    user: str = "me"  # the mailbox; a service account impersonates it
    sender: str | None = None  # optional From header
    base_url: str | None = None
    timeout_s: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GmailConfig:
        env = os.environ if env is None else env
        return cls(
            token=env.get("GMAIL_TOKEN") or None,
            credentials_file=env.get("GOOGLE_APPLICATION_CREDENTIALS") or None,
            user=env.get("GMAIL_USER") or "me",
            sender=env.get("GMAIL_FROM") or None,
            base_url=env.get("GMAIL_BASE_URL") or None,
            timeout_s=float(env.get("GMAIL_TIMEOUT_S") or 30),
        )

    @property
    def configured(self) -> bool:
        # A service account can only write drafts by impersonating a mailbox.
        return bool(self.token or (self.credentials_file and self.user != "me"))


def message_id(idempotency_key: str) -> str:
    return f"<{hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]}@vim.drafts>"


def email_text(req: DeliveryRequest) -> str:
    return req.markdown or render_sections_markdown(req.title, req.sections)


def build_mime(
    req: DeliveryRequest, sender: str | None = None, *, unsent_flag: bool = False
) -> EmailMessage:
    """The draft as MIME. Recipient and subject come from the request only."""
    if not req.to:
        raise rejected(CHANNEL, "an email draft needs a recipient: set `to` in the DeliveryRequest")
    msg = EmailMessage()
    msg["To"] = formataddr((req.to_name or "", req.to))
    if sender:
        msg["From"] = sender
    msg["Subject"] = req.subject or req.title or req.purpose
    msg["Message-ID"] = message_id(req.idempotency_key)
    msg["X-VIM-Idempotency-Key"] = req.idempotency_key
    msg["X-VIM-Account"] = req.account_id
    msg["X-VIM-Purpose"] = req.purpose
    if unsent_flag:
        msg["X-Unsent"] = "1"  # mail clients open a .eml with this as an editable draft
    # Outbox files are read by people in any editor: 8bit keeps the text as written.
    msg.set_content(email_text(req), cte="8bit" if unsent_flag else None)
    return msg


class GmailChannel:
    def __init__(self, config: GmailConfig) -> None:
        self.config = config
        # httplib2.Http is not thread-safe: one service object per worker thread.
        self._local = threading.local()

    def _credentials(self) -> Any:
        if self.config.token:
            from google.oauth2.credentials import Credentials

            return Credentials(token=self.config.token)
        from google.oauth2 import service_account

        return service_account.Credentials.from_service_account_file(
            self.config.credentials_file, scopes=[COMPOSE_SCOPE], subject=self.config.user
        )

    def service(self) -> Any:
        if getattr(self._local, "service", None) is None:
            import google_auth_httplib2
            import httplib2
            from googleapiclient.discovery import build

            try:
                creds = self._credentials()
            except (OSError, ValueError, KeyError):
                raise rejected(
                    CHANNEL,
                    "GOOGLE_APPLICATION_CREDENTIALS is not a readable service-account JSON file",
                ) from None
            http = google_auth_httplib2.AuthorizedHttp(
                creds, http=httplib2.Http(timeout=self.config.timeout_s)
            )
            # The discovery paths are relative ("gmail/v1/..."): the endpoint must end with "/".
            base = self.config.base_url
            options = {"api_endpoint": base.rstrip("/") + "/"} if base else None
            self._local.service = build(
                "gmail",
                "v1",
                http=http,
                static_discovery=True,
                cache_discovery=False,
                client_options=options,
            )
        return self._local.service

    async def create_draft(self, req: DeliveryRequest, *, check_existing: bool) -> tuple[str, bool]:
        """(draft id, created). ``check_existing`` after an attempt that may have created it."""
        mime = build_mime(req, self.config.sender)
        raw = base64.urlsafe_b64encode(mime.as_bytes()).decode("ascii")
        user = self.config.user

        def run() -> tuple[str, bool]:
            svc = self.service()
            if check_existing:
                q = f"rfc822msgid:{message_id(req.idempotency_key).strip('<>')}"
                found = svc.users().drafts().list(userId=user, q=q, maxResults=1).execute()
                if found.get("drafts"):
                    return found["drafts"][0]["id"], False
            draft = (
                svc.users().drafts().create(userId=user, body={"message": {"raw": raw}}).execute()
            )
            return draft["id"], True

        try:
            return await asyncio.to_thread(run)
        except Exception as e:
            raise self.map_error(e) from None

    def map_error(self, e: Exception) -> Exception:
        from google.auth import exceptions as gauth
        from googleapiclient.errors import HttpError

        secrets = [self.config.token]
        if isinstance(e, ApplicationError):
            return e
        if isinstance(e, HttpError):
            status = int(e.resp.status)
            reason, message = _google_error(e)
            if status == 403 and reason in ("rateLimitExceeded", "userRateLimitExceeded"):
                return retryable(
                    CHANNEL, f"403 {reason}: rate limited", retry_after_seconds(e.resp)
                )
            detail = f"{reason or 'error'}" + (
                f" ({redact(message, secrets)[:200]})" if message else ""
            )
            fixes = {
                400: "check the recipient address and the message (the draft was rejected as sent)",
                401: "invalid credentials: refresh GMAIL_TOKEN (or check GOOGLE_APPLICATION_CREDENTIALS)",
                403: f"insufficient permission: grant the {COMPOSE_SCOPE} scope (and domain-wide delegation for a service account)",
                404: f"mailbox not found: check GMAIL_USER ({self.config.user!r})",
            }
            return by_status(CHANNEL, status, detail, fixes, retry_after_seconds(e.resp))
        if isinstance(e, gauth.RefreshError) and self.config.token:
            # A bare access token cannot refresh: Gmail answered 401 and the library gave up.
            return rejected(
                CHANNEL,
                "401 invalid credentials: refresh GMAIL_TOKEN (the access token expired or was revoked)",
            )
        if isinstance(e, gauth.RefreshError):
            return rejected(
                CHANNEL,
                "the service account could not get a token: check GOOGLE_APPLICATION_CREDENTIALS and "
                f"domain-wide delegation of {COMPOSE_SCOPE} for GMAIL_USER",
            )
        if isinstance(e, gauth.TransportError):
            return retryable(CHANNEL, "could not reach the token endpoint")
        if isinstance(e, TimeoutError | socket.timeout):
            return retryable(CHANNEL, f"request timed out after {self.config.timeout_s:g}s")
        if isinstance(e, OSError):
            return retryable(CHANNEL, f"connection error ({type(e).__name__})")
        if type(e).__module__.startswith("httplib2"):
            return retryable(CHANNEL, f"connection error ({type(e).__name__})")
        return e


def _google_error(e: Any) -> tuple[str, str]:
    try:
        body = json.loads(e.content.decode("utf-8") if isinstance(e.content, bytes) else e.content)
        err = body.get("error", {})
        reason = (err.get("errors") or [{}])[0].get("reason") or err.get("status") or ""
        return str(reason), str(err.get("message") or "")
    except (ValueError, AttributeError, TypeError):
        return "", ""
