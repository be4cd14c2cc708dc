"""Each console page rendered by headless Chromium (the distribution's package), checking
what a person sees; also takes the screenshots the README shows.

Without a Chromium binary these tests skip with the reason (`.ci/run` installs it).
Set VIM_UPDATE_SCREENSHOTS=1 to copy the screenshots into docs/.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
from collections.abc import AsyncIterator
from html import unescape
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
import uvicorn
from temporalio.testing import WorkflowEnvironment

from console.app import create_app
from demo.portfolio import REFERENCE_ACCOUNT_ID
from stack.settings import ROOT
from tests.console.conftest import live_accounts, make_console
from tests.workflows.helpers import running_worker, settings_for_test

pytestmark = [pytest.mark.devserver, pytest.mark.slow]

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
DOCS = ROOT / "docs"


def _browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no headless Chromium on this machine (apt-get install chromium; .ci/run does)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _chromium(browser: str, profile: Path, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        browser,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        f"--user-data-dir={profile}",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=90)
    assert proc.returncode == 0, f"chromium exited {proc.returncode}"
    return out.decode()


def _visible_text(dom: str) -> str:
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", body)))


@pytest_asyncio.fixture
async def served(
    dev_env: WorkflowEnvironment, demo_dsn: str, pool: asyncpg.Pool, tmp_path: Path
) -> AsyncIterator[str]:
    """The console on a free local port, over the scored demo portfolio and two live
    account workflows (one paused, one whose CS plan waits for approval)."""
    client = dev_env.client
    settings = settings_for_test(tmp_path)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(make_console(settings, pool, client)),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    )
    async with running_worker(client, demo_dsn, settings), live_accounts(client, settings):
        task = asyncio.create_task(server.serve())
        try:
            for _ in range(400):
                if server.started:
                    break
                await asyncio.sleep(0.05)
            base = f"http://127.0.0.1:{port}"
            # wait until visibility lists the waiting CS plan (it lags the start a little)
            import httpx

            async with httpx.AsyncClient() as h:
                for _ in range(200):
                    page = (await h.get(f"{base}/decisions")).text
                    if 'data-kind="cs_plan"' in page and 'data-kind="paused"' in page:
                        break
                    await asyncio.sleep(0.3)
            yield base
        finally:
            server.should_exit = True
            await task


PAGES = {
    # page, what a person must see, screenshot for the README (or None)
    "portfolio": (
        "/",
        ["ARR at risk", "ARR heatmap: tier × band", "Riskiest accounts"],
        "console-portfolio.png",
    ),
    "account": (
        f"/accounts/{REFERENCE_ACCOUNT_ID}",
        ["Score history", "GREEN ≥", "Sub-scores", "$45,000", "open in the Temporal UI"],
        "console-account.png",
    ),
    "decisions": (
        "/decisions",
        ["Waiting for a person", "CS plan to approve", "Approve plan"],
        "console-decisions.png",
    ),
    "renewals": ("/renewals", ["Renewals in the next 120 days", "forecast"], None),
    "books": ("/books", ["Books of business", "open decisions"], None),
    "retention": ("/retention", ["Retention by month", "GRR", "NRR"], None),
    "calibration": ("/calibration", ["Config in force", "No calibration yet"], None),
}


async def test_each_page_renders_in_headless_chromium(served: str, tmp_path: Path) -> None:
    browser = _browser()
    shots: list[Path] = []
    for name, (path, must_see, shot) in PAGES.items():
        dom = await _chromium(browser, tmp_path / f"profile-{name}", "--dump-dom", served + path)
        text = _visible_text(dom)
        for phrase in must_see:
            assert phrase in text, f"{name}: {phrase!r} not visible"
        if name == "portfolio":
            assert dom.count('class="cell"') >= 9, "the heatmap has a cell per tier and band"
        if name == "account":
            assert "<circle" in dom and 'class="chart score-chart"' in dom
        if shot:
            out = tmp_path / shot
            await _chromium(
                browser,
                tmp_path / f"profile-{name}-shot",
                "--window-size=1280,700" if name == "decisions" else "--window-size=1280,1500",
                f"--screenshot={out}",
                served + path,
            )
            assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert 10_000 < out.stat().st_size < 500_000, out.stat().st_size
            shots.append(out)
    if os.environ.get("VIM_UPDATE_SCREENSHOTS"):
        DOCS.mkdir(exist_ok=True)
        for s in shots:
            shutil.copy(s, DOCS / s.name)
