"""`python -m stack codec-server`: decrypts payloads for the Temporal Web UI and CLI.

The Web UI ("Remote Codec Endpoint", or `temporal server start-dev
--ui-codec-endpoint`, which the demo sets) and `temporal workflow show
--codec-endpoint URL` POST `{"payloads": [...]}` (protobuf JSON) to
`/decode` (and `/encode`) with an `X-Namespace` header; the answer is the
same shape with the payloads decrypted. The browser calls this server
directly, so it answers CORS preflights for the configured Web UI origins
only, and it listens on 127.0.0.1 unless told otherwise: whoever can reach
it can decrypt, so on a shared host put it behind your single sign-on proxy.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from stack.codec import EncryptionCodec, KeyConfigError

log = logging.getLogger("vim.codec")
ALLOWED_HEADERS = "content-type,x-namespace,authorization"


def build_server(
    codec: EncryptionCodec,
    *,
    host: str,
    port: int,
    origins: Sequence[str],
    namespaces: Sequence[str] | None = None,
) -> ThreadingHTTPServer:
    """A ready-to-serve HTTP server (call `serve_forever`); port 0 picks a free one."""
    routes: dict[str, Callable[[Iterable[Payload]], list[Payload]]] = {
        "/decode": codec.decode_sync,
        "/encode": codec.encode_sync,
    }
    allowed = {o.rstrip("/") for o in origins}

    class Handler(BaseHTTPRequestHandler):
        def _cors(self) -> None:
            origin = (self.headers.get("Origin") or "").rstrip("/")
            if origin and origin in allowed:
                self.send_header("Access-Control-Allow-Origin", origin)
                self.send_header("Access-Control-Allow-Methods", "POST, OPTIONS")
                self.send_header("Access-Control-Allow-Headers", ALLOWED_HEADERS)
                self.send_header("Access-Control-Allow-Credentials", "true")
                self.send_header("Vary", "Origin")

        def _reply(self, status: HTTPStatus, body: str, ctype: str = "application/json") -> None:
            data = body.encode()
            self.send_response(status)
            self._cors()
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_OPTIONS(self) -> None:
            self.send_response(
                HTTPStatus.NO_CONTENT if self.path in routes else HTTPStatus.NOT_FOUND
            )
            self._cors()
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self) -> None:
            fn = routes.get(self.path.split("?", 1)[0])
            if fn is None:
                self._reply(HTTPStatus.NOT_FOUND, json.dumps({"error": "POST /decode or /encode"}))
                return
            namespace = self.headers.get("X-Namespace")
            if namespaces and namespace not in namespaces:
                self._reply(
                    HTTPStatus.FORBIDDEN,
                    json.dumps({"error": f"namespace {namespace!r} is not served here"}),
                )
                return
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                payloads = json_format.Parse(raw, Payloads())
                result = Payloads(payloads=fn(payloads.payloads))
            except (json_format.ParseError, UnicodeDecodeError) as err:
                self._reply(
                    HTTPStatus.BAD_REQUEST, json.dumps({"error": f"not Payloads JSON: {err}"})
                )
                return
            except KeyConfigError as err:
                self._reply(HTTPStatus.BAD_REQUEST, json.dumps({"error": str(err)}))
                return
            except Exception as err:  # a payload that fails authentication (wrong key, tampered)
                self._reply(
                    HTTPStatus.BAD_REQUEST,
                    json.dumps({"error": f"cannot decrypt: {type(err).__name__}"}),
                )
                return
            self._reply(HTTPStatus.OK, json_format.MessageToJson(result))

        def log_message(self, format: str, *args: object) -> None:
            log.debug("%s " + format, self.address_string(), *args)

    return ThreadingHTTPServer((host, port), Handler)


def serve_in_thread(server: ThreadingHTTPServer) -> threading.Thread:
    t = threading.Thread(target=server.serve_forever, name="codec-server", daemon=True)
    t.start()
    return t
