"""Fake Notion API (Notion-Version 2025-09-03: databases hold data sources)."""

from __future__ import annotations

import re
import uuid
from typing import Any

from tests.fakes.base import FakeServer, Recorded, Reply, bearer, json_body

KNOWN_VERSIONS = {"2022-06-28", "2025-09-03"}
BLOCK_TYPES = {
    "paragraph",
    "heading_1",
    "heading_2",
    "heading_3",
    "callout",
    "bulleted_list_item",
    "numbered_list_item",
    "table",
    "table_row",
    "divider",
    "quote",
    "toggle",
    "to_do",
}
ERROR_CODES = {
    400: "validation_error",
    401: "unauthorized",
    403: "restricted_resource",
    404: "object_not_found",
    409: "conflict_error",
    429: "rate_limited",
    500: "internal_server_error",
    502: "internal_server_error",
    503: "service_unavailable",
}
DEFAULT_PROPERTIES = {
    "Name": "title",
    "Idempotency Key": "rich_text",
    "Account": "rich_text",
    "Band": "select",
    "Score": "number",
    "Quarter": "rich_text",
}


def _rich_text_ok(rt: Any) -> list[str]:
    if not isinstance(rt, list):
        return ["rich_text must be a list"]
    out = []
    for t in rt:
        content = (t.get("text") or {}).get("content")
        if t.get("type", "text") != "text" or not isinstance(content, str):
            out.append("rich_text items need {type: text, text: {content}}")
        elif len(content) > 2000:
            out.append("rich_text content longer than 2000 characters")
    return out


def check_block(b: dict[str, Any], depth: int = 0) -> list[str]:
    kind = b.get("type")
    if kind not in BLOCK_TYPES or not isinstance(b.get(kind), dict):
        return [f"block type {kind!r} missing or without its '{kind}' object"]
    inner = b[kind]
    problems: list[str] = []
    if kind == "table":
        width = inner.get("table_width")
        rows = inner.get("children") or []
        if not isinstance(width, int) or width < 1:
            problems.append("table.table_width must be a positive integer")
        if not rows:
            problems.append("a table must be created with its table_row children")
        for r in rows:
            if r.get("type") != "table_row":
                problems.append("table children must be table_row blocks")
                continue
            cells = r["table_row"].get("cells")
            if not isinstance(cells, list) or len(cells) != width:
                problems.append(f"table_row has {len(cells or [])} cells, table_width is {width}")
            for c in cells or []:
                problems += _rich_text_ok(c)
    elif kind == "table_row":
        for c in inner.get("cells") or []:
            problems += _rich_text_ok(c)
    elif kind != "divider":
        problems += _rich_text_ok(inner.get("rich_text"))
    if (
        kind == "callout"
        and "icon" in inner
        and inner["icon"].get("type") not in ("emoji", "external", "custom_emoji")
    ):
        problems.append("callout icon must be an emoji/external icon object")
    return problems


class NotionFake(FakeServer):
    name = "notion"

    def __init__(self, token: str = "secret_faketoken1234567890") -> None:
        super().__init__()
        self.token = token
        self.databases: dict[str, dict[str, Any]] = {}
        self.pages: list[dict[str, Any]] = []

    def add_database(self, database_id: str, properties: dict[str, str] | None = None) -> str:
        ds = str(uuid.uuid4())
        self.databases[database_id] = {
            "data_source_id": ds,
            "properties": dict(properties or DEFAULT_PROPERTIES),
        }
        return ds

    def error_body(self, status: int) -> Any:
        code = ERROR_CODES.get(status, "internal_server_error")
        msg = {
            404: "Could not find database. Make sure the relevant pages and databases are shared with your integration.",
            401: "API token is invalid.",
            403: "Insufficient permissions for this endpoint.",
        }.get(status, f"fake {status}")
        return {"object": "error", "status": status, "code": code, "message": msg}

    def _ds(self, ds_id: str) -> dict[str, Any] | None:
        return next((d for d in self.databases.values() if d["data_source_id"] == ds_id), None)

    def check(self, req: Recorded) -> list[str]:
        problems = bearer(req, self.token)
        if req.headers.get("notion-version") not in KNOWN_VERSIONS:
            problems.append(
                f"Notion-Version header missing or unknown: {req.headers.get('notion-version')!r}"
            )
        if not req.path.startswith("/v1/"):
            problems.append("paths start with /v1/")
        if req.method in ("POST", "PATCH"):
            body, errs = json_body(req)
            if errs:
                return problems + errs
            if req.path == "/v1/pages":
                problems += self._check_page(body)
            elif req.path.endswith("/children"):
                kids = body.get("children") or []
                if len(kids) > 100:
                    problems.append("at most 100 children per request")
                for b in kids:
                    problems += check_block(b)
            elif req.path.endswith("/query"):
                f = body.get("filter")
                if f is not None and (
                    not isinstance(f.get("property"), str)
                    or not any(k in f for k in ("rich_text", "title", "select", "number"))
                ):
                    problems.append("a property filter needs 'property' and a type condition")
        return problems

    def _check_page(self, body: dict[str, Any]) -> list[str]:
        problems: list[str] = []
        parent = body.get("parent") or {}
        ds_id = parent.get("data_source_id") if parent.get("type") == "data_source_id" else None
        db = self._ds(ds_id) if ds_id else self.databases.get(parent.get("database_id", ""))
        if db is None:
            return ["parent must name a data_source_id (or database_id) the integration can see"]
        props = body.get("properties") or {}
        for name, value in props.items():
            kind = db["properties"].get(name)
            if kind is None:
                problems.append(f"{name} is not a property that exists")
            elif kind not in value:
                problems.append(f"property {name} is {kind}, value given as {list(value)}")
            elif kind in ("title", "rich_text"):
                problems += _rich_text_ok(value[kind])
        if not any(db["properties"].get(n) == "title" for n in props):
            problems.append("the title property is required")
        kids = body.get("children") or []
        if len(kids) > 100:
            problems.append("at most 100 children per request")
        for b in kids:
            problems += check_block(b)
        return problems

    def route(self, req: Recorded) -> Reply:
        m = re.fullmatch(r"/v1/databases/([^/]+)", req.path)
        if m and req.method == "GET":
            db = self.databases.get(m.group(1))
            if db is None:
                return Reply(404, self.error_body(404))
            return Reply(
                200,
                {
                    "object": "database",
                    "id": m.group(1),
                    "data_sources": [{"id": db["data_source_id"], "name": "QBRs"}],
                },
            )
        m = re.fullmatch(r"/v1/data_sources/([^/]+)", req.path)
        if m and req.method == "GET":
            db = self._ds(m.group(1))
            if db is None:
                return Reply(404, self.error_body(404))
            return Reply(
                200,
                {
                    "object": "data_source",
                    "id": m.group(1),
                    "properties": {
                        n: {"id": n[:4], "name": n, "type": t, t: {}}
                        for n, t in db["properties"].items()
                    },
                },
            )
        m = re.fullmatch(r"/v1/data_sources/([^/]+)/query", req.path)
        if m and req.method == "POST":
            f = req.json().get("filter") or {}
            want = (f.get("rich_text") or {}).get("equals")
            hits = [
                p
                for p in self.pages
                if p["data_source_id"] == m.group(1)
                and want is not None
                and "".join(
                    t["text"]["content"]
                    for t in p["properties"].get(f.get("property"), {}).get("rich_text", [])
                )
                == want
            ]
            return Reply(
                200,
                {
                    "object": "list",
                    "results": [self._public(p) for p in hits],
                    "has_more": False,
                    "next_cursor": None,
                },
            )
        if req.path == "/v1/pages" and req.method == "POST":
            body = req.json()
            parent = body["parent"]
            ds_id = (
                parent.get("data_source_id")
                or self.databases[parent["database_id"]]["data_source_id"]
            )
            page = {
                "id": str(uuid.uuid4()),
                "data_source_id": ds_id,
                "properties": body.get("properties", {}),
                "children": list(body.get("children") or []),
            }
            self.pages.append(page)
            return Reply(200, self._public(page))
        m = re.fullmatch(r"/v1/blocks/([^/]+)/children", req.path)
        if m and req.method == "PATCH":
            page = next((p for p in self.pages if p["id"] == m.group(1)), None)
            if page is None:
                return Reply(404, self.error_body(404))
            page["children"] += req.json().get("children", [])
            return Reply(200, {"object": "list", "results": []})
        return Reply(
            404,
            {
                "object": "error",
                "status": 404,
                "code": "invalid_request_url",
                "message": "no route",
            },
        )

    @staticmethod
    def _public(page: dict[str, Any]) -> dict[str, Any]:
        return {
            "object": "page",
            "id": page["id"],
            "url": f"https://www.notion.so/{page['id'].replace('-', '')}",
            "parent": {"type": "data_source_id", "data_source_id": page["data_source_id"]},
            "properties": page["properties"],
        }
