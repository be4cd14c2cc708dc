"""Who may use the console: loopback by default, a token or users anywhere else."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from console.__main__ import EXIT_BAD_INPUT, ConsoleError, check_binding, main
from console.data import Console
from tests.console.conftest import console_settings, http


def _console(tmp_path: Path, **env: str) -> Console:
    return Console(settings=console_settings(tmp_path, **env), pool=None, client=None)  # type: ignore[arg-type]


def test_binding_outside_loopback_needs_a_credential(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    check_binding(console_settings(tmp_path), "127.0.0.1")
    check_binding(console_settings(tmp_path), "::1")
    with pytest.raises(ConsoleError) as err:
        check_binding(console_settings(tmp_path), "0.0.0.0")
    assert err.value.code == EXIT_BAD_INPUT and "VIM_CONSOLE_TOKEN" in str(err.value)
    check_binding(console_settings(tmp_path, VIM_CONSOLE_TOKEN="s3cret"), "0.0.0.0")
    check_binding(console_settings(tmp_path, VIM_CONSOLE_USERS="dana:pw"), "0.0.0.0")
    with pytest.raises(ValueError, match="name:password"):
        console_settings(tmp_path, VIM_CONSOLE_USERS="dana")
    assert main(["--host", "0.0.0.0"]) == EXIT_BAD_INPUT
    assert "refusing to bind 0.0.0.0" in capsys.readouterr().err


async def test_token_is_required_when_configured(tmp_path: Path) -> None:
    async with http(_console(tmp_path, VIM_CONSOLE_TOKEN="s3cret")) as c:
        assert (await c.get("/healthz")).status_code == 401
        assert (
            await c.get("/healthz", headers={"Authorization": "Bearer nope"})
        ).status_code == 401
        ok = await c.get("/healthz", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        login = await c.get("/healthz?token=s3cret")
        assert login.status_code == 303 and "token" not in login.headers["location"]
        assert "httponly" in login.headers["set-cookie"].lower()
        c.cookies.set("vim_console_token", "s3cret")
        assert (await c.get("/healthz")).status_code == 200


async def test_basic_auth_over_configured_users_and_same_origin_posts(tmp_path: Path) -> None:
    def basic(user: str, pw: str) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()}

    async with http(_console(tmp_path, VIM_CONSOLE_USERS="dana:pw1,lee:pw2")) as c:
        r = await c.get("/healthz")
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")
        assert (await c.get("/healthz", headers=basic("dana", "pw2"))).status_code == 401
        assert (await c.get("/healthz", headers=basic("lee", "pw2"))).status_code == 200
        foreign = await c.post(
            "/decisions", headers={**basic("lee", "pw2"), "Origin": "https://evil.example"}
        )
        assert foreign.status_code == 403
