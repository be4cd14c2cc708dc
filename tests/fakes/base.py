"""A local fake HTTP server that checks requests against an API's public contract.

Each fake (Anthropic, Notion, Gmail, Sheets, Slack) subclasses ``FakeServer``:
``check(req)`` lists contract violations (method, path, auth header form,
body shape); ``route(req)`` answers like the real API. A violating request is
answered 400 and recorded in ``violations``, so a test that forgets to look
still fails on the client side. ``fail``/``hang``/``reply_raw`` script the
next answers: 429, 5xx, 4xx with the API's own error body, malformed bodies,
and a hang longer than the client's timeout.

Runs ``http.server.ThreadingHTTPServer`` on 127.0.0.1 in a daemon thread.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | dict[str, Any] | list[Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    hang: float = 0.0  # seconds to wait before answering (a timeout, for the client)
    match: str | None = None  # only for requests whose "METHOD /path" contains this


class FakeServer:
    name = "fake"

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.violations: list[str] = []
        self._script: list[Reply] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                fake._handle(self)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _any

            def log_message(self, *args: Any) -> None:  # quiet
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    # ------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        return f"http://{host}:{port}"

    def start(self) -> FakeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> list[str]:
        """Forget requests and scripts (for a server shared by several tests); returns violations."""
        with self._lock:
            found, self.violations = self.violations, []
            self.requests.clear()
            self._script.clear()
        return found

    # ------------------------------------------------------------ scripting

    def fail(
        self,
        status: int,
        body: Any = None,
        *,
        times: int = 1,
        headers: dict[str, str] | None = None,
        match: str | None = None,
    ) -> None:
        for _ in range(times):
            self._script.append(
                Reply(
                    status,
                    body if body is not None else self.error_body(status),
                    headers or {},
                    match=match,
                )
            )

    def hang(self, seconds: float, *, match: str | None = None) -> None:
        self._script.append(Reply(504, self.error_body(504), hang=seconds, match=match))

    def reply_raw(
        self,
        status: int,
        body: bytes | str,
        *,
        headers: dict[str, str] | None = None,
        match: str | None = None,
    ) -> None:
        self._script.append(
            Reply(status, body, headers or {"Content-Type": "application/json"}, match=match)
        )

    def error_body(self, status: int) -> Any:
        return {"error": f"status {status}"}

    # ------------------------------------------------------------ override

    def check(self, req: Recorded) -> list[str]:
        return []

    def route(self, req: Recorded) -> Reply:
        return Reply(404, {"error": "no route"})

    # ------------------------------------------------------------- helpers

    def calls(self, method: str | None = None, path_contains: str = "") -> list[Recorded]:
        return [
            r
            for r in self.requests
            if (method is None or r.method == method) and path_contains in r.path
        ]

    def _next_scripted(self, req: Recorded) -> Reply | None:
        with self._lock:
            for i, r in enumerate(self._script):
                if r.match is None or r.match in f"{req.method} {req.path}":
                    return self._script.pop(i)
        return None

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        req = Recorded(
            method=h.command,
            path=parts.path,
            query=parse_qs(parts.query),
            headers={k.lower(): v for k, v in h.headers.items()},
            body=body,
        )
        with self._lock:
            self.requests.append(req)
        problems = self.check(req)
        if problems:
            with self._lock:
                self.violations += [f"{req.method} {req.path}: {p}" for p in problems]
            reply = Reply(400, {"contract_violation": problems})
        else:
            reply = self._next_scripted(req) or self.route(req)
        if reply.hang:
            time.sleep(reply.hang)
        self._send(h, reply)

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, reply: Reply) -> None:
        body = reply.body
        headers = dict(reply.headers)
        if isinstance(body, dict | list):
            data = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json; charset=utf-8")
        elif isinstance(body, str):
            data = body.encode()
            headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        else:
            data = body or b""
        try:
            h.send_response(reply.status)
            for k, v in headers.items():
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)


def bearer(req: Recorded, expected: str | None = None) -> list[str]:
    auth = req.headers.get("authorization", "")
    if not auth.startswith("Bearer ") or len(auth) <= len("Bearer "):
        return ["missing 'Authorization: Bearer <token>' header"]
    if expected is not None and auth != f"Bearer {expected}":
        return ["wrong bearer token"]
    return []


def json_body(req: Recorded) -> tuple[Any, list[str]]:
    if "application/json" not in req.headers.get("content-type", ""):
        return None, [
            f"Content-Type must be application/json, got {req.headers.get('content-type')!r}"
        ]
    try:
        return req.json(), []
    except ValueError:
        return None, ["body is not JSON"]
