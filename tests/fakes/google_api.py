"""Fake Gmail (drafts) and Sheets (values) APIs, checked against the public contract."""

from __future__ import annotations

import base64
import binascii
import itertools
import re
from email import policy
from email.parser import BytesParser
from typing import Any
from urllib.parse import parse_qs, unquote

from tests.fakes.base import FakeServer, Recorded, Reply, bearer, json_body

STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
REASONS = {
    400: "invalidArgument",
    401: "authError",
    403: "insufficientPermissions",
    404: "notFound",
    429: "rateLimitExceeded",
    500: "backendError",
    503: "backendError",
}


def google_error(
    status: int, message: str | None = None, reason: str | None = None
) -> dict[str, Any]:
    return {
        "error": {
            "code": status,
            "message": message or f"fake {status}",
            "errors": [
                {
                    "message": message or f"fake {status}",
                    "domain": "global",
                    "reason": reason or REASONS.get(status, "backendError"),
                }
            ],
            "status": STATUS.get(status, "UNKNOWN"),
        }
    }


class GmailFake(FakeServer):
    name = "gmail"

    def __init__(self, token: str = "ya29.fake-gmail-access-token") -> None:
        super().__init__()
        self.token = token
        self.drafts: list[dict[str, Any]] = []  # {"id", "mid", "message": EmailMessage}
        self.token_requests = 0
        self._ids = itertools.count(1)

    def error_body(self, status: int) -> Any:
        return google_error(status)

    def check(self, req: Recorded) -> list[str]:
        if req.path == "/token":  # OAuth token endpoint for service-account (JWT bearer) grants
            form = parse_qs(req.body.decode())
            if (
                req.method != "POST"
                or form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
                or not form.get("assertion")
            ):
                return ["token requests are POST grant_type=jwt-bearer with an assertion"]
            return []
        problems = bearer(req, self.token)
        if re.search(r"/messages/send|/drafts/send", req.path):
            return [*problems, "this system must never send mail: drafts only"]
        if not re.fullmatch(r"/gmail/v1/users/[^/]+/drafts", req.path):
            return [*problems, f"unexpected endpoint {req.path}"]
        if req.method == "POST":
            body, errs = json_body(req)
            if errs:
                return problems + errs
            raw = (body.get("message") or {}).get("raw")
            if not isinstance(raw, str):
                return [*problems, "drafts.create needs {message: {raw: base64url MIME}}"]
            if re.search(r"[+/]", raw):
                problems.append("raw must be base64url (no '+' or '/')")
            try:
                msg = BytesParser(policy=policy.default).parsebytes(
                    base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
                )
            except (binascii.Error, ValueError):
                return [*problems, "raw is not base64url"]
            for h in ("To", "Subject"):
                if not msg.get(h):
                    problems.append(f"MIME message has no {h} header")
        elif req.method != "GET":
            problems.append(f"unexpected method {req.method}")
        return problems

    def route(self, req: Recorded) -> Reply:
        if req.path == "/token":
            self.token_requests += 1
            return Reply(
                200, {"access_token": self.token, "expires_in": 3600, "token_type": "Bearer"}
            )
        if req.method == "GET":
            q = (req.query.get("q") or [""])[0]
            m = re.match(r"rfc822msgid:(\S+)", q)
            hits = [
                d for d in self.drafts if m and d["message"]["Message-ID"].strip("<>") == m.group(1)
            ]
            return Reply(
                200,
                {
                    "drafts": [{"id": d["id"], "message": {"id": d["mid"]}} for d in hits],
                    "resultSizeEstimate": len(hits),
                },
            )
        raw = req.json()["message"]["raw"]
        msg = BytesParser(policy=policy.default).parsebytes(
            base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
        )
        n = next(self._ids)
        draft = {"id": f"r-{n}", "mid": f"m-{n}", "message": msg}
        self.drafts.append(draft)
        return Reply(
            200,
            {
                "id": draft["id"],
                "message": {"id": draft["mid"], "threadId": f"t-{n}", "labelIds": ["DRAFT"]},
            },
        )


class SheetsFake(FakeServer):
    name = "sheets"

    def __init__(self, token: str = "ya29.fake-sheets-access-token") -> None:
        super().__init__()
        self.token = token
        self.spreadsheets: dict[str, dict[str, list[list[Any]]]] = {}

    def add(self, spreadsheet_id: str, tabs: dict[str, list[list[Any]]]) -> None:
        self.spreadsheets[spreadsheet_id] = tabs

    def error_body(self, status: int) -> Any:
        return google_error(status)

    def check(self, req: Recorded) -> list[str]:
        problems = bearer(req, self.token)
        if req.method != "GET":
            problems.append("the import only reads: GET expected")
        if not re.fullmatch(r"/v4/spreadsheets/[^/]+(/values/[^/]+)?", req.path):
            problems.append(f"unexpected endpoint {req.path}")
        if "/values/" in req.path:
            vr = (req.query.get("valueRenderOption") or ["FORMATTED_VALUE"])[0]
            if vr not in ("FORMATTED_VALUE", "UNFORMATTED_VALUE", "FORMULA"):
                problems.append(f"unknown valueRenderOption {vr}")
            dt = (req.query.get("dateTimeRenderOption") or ["SERIAL_NUMBER"])[0]
            if dt not in ("SERIAL_NUMBER", "FORMATTED_STRING"):
                problems.append(f"unknown dateTimeRenderOption {dt}")
        return problems

    def route(self, req: Recorded) -> Reply:
        m = re.fullmatch(r"/v4/spreadsheets/([^/]+)(?:/values/([^/]+))?", req.path)
        assert m
        book = self.spreadsheets.get(m.group(1))
        if book is None:
            return Reply(404, google_error(404, "Requested entity was not found."))
        if m.group(2) is None:
            return Reply(
                200,
                {
                    "spreadsheetId": m.group(1),
                    "sheets": [
                        {"properties": {"sheetId": i, "title": t}} for i, t in enumerate(book)
                    ],
                },
            )
        rng = unquote(m.group(2))
        tab = rng.split("!")[0].strip("'").replace("''", "'")
        if tab not in book:
            return Reply(400, google_error(400, f"Unable to parse range: {rng}"))
        rows = book[tab]
        body: dict[str, Any] = {"range": f"'{tab}'!A1:Z{len(rows)}", "majorDimension": "ROWS"}
        if rows:
            body["values"] = rows
        return Reply(200, body)
