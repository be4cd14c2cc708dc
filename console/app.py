"""The CS console: a small server-rendered Starlette app over Postgres and Temporal.

Pages: portfolio (/), account (/accounts/{id}), decisions (/decisions), renewals,
books, retention, calibration. Decisions are POSTed plain forms that send the same
validated updates as `starter.py`, with the person who decided.

Security: Jinja autoescape is on for every template (customer text is never rendered
unescaped); when a token or users are configured every request must carry them
(``Authorization: Bearer``, the ``vim_console_token`` cookie set by ``/?token=...``, or
HTTP basic auth); POSTs from another origin are refused.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlparse

from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from console import svg
from console.data import Console, DecisionRefused, decision_message
from domain.churn import CHURN_LEVELS
from domain.health import fmt_money, fmt_num, fmt_pct
from domain.lifecycle import Phase
from domain.portfolio import (
    BANDS,
    FORECAST_CATEGORIES,
    TIERS,
    UNSCORED,
    Filters,
    apply_filters,
    arr_at_risk,
    arr_by,
    books,
    forecast_category,
    phase_counts,
    renewal_checkpoints,
    riskiest,
    upcoming_renewals,
)
from domain.retention import monthly_retention

HERE = Path(__file__).resolve().parent
TOKEN_COOKIE = "vim_console_token"
RENEWAL_DAYS = 120
BOOK_WEEKS = 4
RETENTION_MONTHS = 12
RENEWAL_WINDOWS = (30, 60, 90, 120, 180)
MAX_NAME = 200


def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("console", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(money=fmt_money, num=fmt_num, pct=fmt_pct)
    env.globals.update(BANDS=BANDS, LEVELS=tuple(reversed(CHURN_LEVELS)), UNSCORED=UNSCORED)
    return env


# ------------------------------------------------------------------- auth


class Auth(BaseHTTPMiddleware):
    """Token or basic auth when configured; same-origin POSTs only."""

    def __init__(self, app: Any, console: Console) -> None:
        super().__init__(app)
        self.token = console.settings.console_token
        self.users = dict(console.settings.console_users)

    async def dispatch(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if request.method == "POST" and not _same_origin(request):
            return PlainTextResponse("cross-origin form refused", status_code=403)
        request.state.user = None
        if not self.token and not self.users:
            return await call_next(request)
        if self.token:
            given = request.query_params.get("token")
            if given is not None and hmac.compare_digest(given, self.token):
                resp = RedirectResponse(request.url.remove_query_params("token"), 303)
                resp.set_cookie(TOKEN_COOKIE, given, httponly=True, samesite="strict")
                return resp
            header = request.headers.get("authorization", "")
            bearer = header[7:] if header.lower().startswith("bearer ") else None
            cookie = request.cookies.get(TOKEN_COOKIE)
            for candidate in (bearer, cookie):
                if candidate is not None and hmac.compare_digest(candidate, self.token):
                    return await call_next(request)
        if self.users:
            user = _basic_user(request.headers.get("authorization", ""), self.users)
            if user is not None:
                request.state.user = user
                return await call_next(request)
            return PlainTextResponse(
                "sign in with a configured console user",
                status_code=401,
                headers={"WWW-Authenticate": 'Basic realm="Value in Motion console"'},
            )
        return PlainTextResponse(
            "a console token is required (Authorization: Bearer ... or /?token=...)",
            status_code=401,
        )


def _basic_user(header: str, users: dict[str, str]) -> str | None:
    if not header.lower().startswith("basic "):
        return None
    try:
        name, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    expected = users.get(name)
    if expected is not None and hmac.compare_digest(password.encode(), expected.encode()):
        return name
    return None


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin or origin == "null":
        return origin != "null"
    return urlparse(origin).netloc == request.headers.get("host", request.url.netloc)


# ------------------------------------------------------------------ pages


def create_app(console: Console) -> Starlette:
    env = _env()
    env.globals["ui_url"] = console.settings.ui_url

    def page(request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        ctx.setdefault("today", console.today())
        ctx.setdefault("user", getattr(request.state, "user", None))
        ctx["path"] = request.url.path
        return HTMLResponse(env.get_template(name).render(**ctx), status_code=status)

    async def portfolio(request: Request) -> Response:
        q = request.query_params
        try:
            days = int(q["renewal"]) if q.get("renewal") else None
        except ValueError:
            days = None
        f = Filters(
            csm=q.get("csm") or None,
            tier=q.get("tier") or None,
            phase=q.get("phase") or None,
            renewal_days=days,
        )
        everything = await console.portfolio()
        rows = apply_filters(everything, f, console.today())
        cfg = await console.config_in_force()
        odds = await console.churn_odds_by_band()
        levels = arr_by(rows, "churn_level", "band")
        top = riskiest(rows, 15)
        await console.top_drivers(top)
        tiers = sorted({r.tier for r in everything} | set(TIERS))
        return page(
            request,
            "portfolio.html",
            f=f,
            rows=rows,
            total_arr=sum(r.arr for r in rows),
            at_risk=arr_at_risk(rows),
            levels=levels,
            heatmap=svg.heatmap(arr_by(rows, "tier", "band"), tiers, [*BANDS, UNSCORED]),
            riskiest=top,
            phases=phase_counts(rows),
            odds=odds,
            config=cfg,
            csms=sorted({r.csm_owner for r in everything if r.csm_owner}),
            tiers=tiers,
            all_phases=[p.slug for p in Phase],
            phases_loading=console.phases_loading,
            windows=RENEWAL_WINDOWS,
        )

    async def account(request: Request) -> Response:
        aid = request.path_params["account_id"]
        acc = await console.account(aid)
        if acc is None:
            return page(request, "error.html", 404, message=f"no account {aid!r}")
        cfg = (await console.config_in_force()).config
        chart = svg.score_chart(
            [(p.as_of, p.score, p.band) for p in acc.history],
            cfg.bands.green_min,
            cfg.bands.amber_min,
        )
        changes = [p for p in acc.history if p.drivers][-12:]
        return page(
            request,
            "account.html",
            a=acc,
            chart=chart,
            changes=list(reversed(changes)),
            bands=cfg.bands,
            odds=await console.churn_odds_by_band(),
        )

    async def decisions(request: Request) -> Response:
        items = await console.decisions()
        flash = request.query_params.get("result")
        error = request.query_params.get("error")
        return page(request, "decisions.html", items=items, flash=flash, error=error)

    async def decide(request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        aid = form.get("account_id", "")
        kind = form.get("kind", "")
        user = getattr(request.state, "user", None)
        by = user or form.get("by", "").strip()
        back = form.get("back") or "/decisions"
        if not back.startswith("/") or back.startswith("//"):
            back = "/decisions"
        try:
            if not by or len(by) > MAX_NAME or any(ord(c) < 32 for c in by):
                raise DecisionRefused(f"say who decides: 1-{MAX_NAME} printable characters")
            name, msg = decision_message(kind, by, form.get("action") == "approve", form)
            result = await console.send(aid, name, msg)
            qs = {"result": f"{aid}: {result} (by {by})"}
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in err.errors()
            )
            qs = {"error": f"{aid}: refused, {problems}"}
        except DecisionRefused as err:
            qs = {"error": f"{aid}: {err}"}
        sep = "&" if "?" in back else "?"
        return RedirectResponse(f"{back}{sep}{urlencode(qs)}", status_code=303)

    async def renewals(request: Request) -> Response:
        sort = "arr" if request.query_params.get("sort") == "arr" else "date"
        today = console.today()
        rows = upcoming_renewals(await console.portfolio(), today, RENEWAL_DAYS, sort)
        recorded = await console.recorded_forecasts()
        items = [
            (
                r,
                forecast_category(r, today, recorded.get(r.account_id)),
                renewal_checkpoints(r.renewal_date, today),  # type: ignore[arg-type]
            )
            for r in rows
        ]
        by_cat = {c: sum(r.arr for r, cat, _ in items if cat == c) for c in FORECAST_CATEGORIES}
        return page(
            request, "renewals.html", items=items, sort=sort, days=RENEWAL_DAYS, by_cat=by_cat
        )

    async def books_page(request: Request) -> Response:
        rows = await console.portfolio()
        pending: dict[str, int] = {}
        for d in await console.decisions():
            pending[d.csm_owner or "(unassigned)"] = (
                pending.get(d.csm_owner or "(unassigned)", 0) + 1
            )
        bs = books(rows, pending, await console.drafts_by_csm(BOOK_WEEKS), BOOK_WEEKS)
        return page(request, "books.html", books=bs, weeks=BOOK_WEEKS)

    async def retention(request: Request) -> Response:
        today = console.today()
        first = date(today.year - 1, today.month, 1)
        months = monthly_retention(await console.contract_terms(), first, today)
        chart = svg.line_chart(
            [
                ("GRR", [(m.month, m.grr) for m in months]),
                ("NRR", [(m.month, m.nrr) for m in months]),
            ]
        )
        return page(request, "retention.html", months=months, chart=chart)

    async def calibration(request: Request) -> Response:
        report, markdown, path = console.latest_calibration()
        cfg = await console.config_in_force()
        return page(
            request,
            "calibration.html",
            report=report,
            markdown=markdown,
            report_path=path,
            config=cfg,
            odds=await console.churn_odds_by_band(),
            adoptions=await console.adoption_history(),
        )

    async def outbox(request: Request) -> Response:
        rel = request.path_params["path"]
        target = console.settings.outbox_dir / rel
        if console.outbox_relative(target) is None or not target.is_file():
            return PlainTextResponse("not in the outbox", status_code=404)
        return FileResponse(target, media_type="text/plain; charset=utf-8")

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    routes = [
        Route("/", portfolio),
        Route("/accounts/{account_id}", account),
        Route("/decisions", decisions),
        Route("/decisions", decide, methods=["POST"]),
        Route("/renewals", renewals),
        Route("/books", books_page),
        Route("/retention", retention),
        Route("/calibration", calibration),
        Route("/outbox/{path:path}", outbox),
        Route("/healthz", health),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    return Starlette(routes=routes, middleware=[Middleware(Auth, console=console)])
