"""A local stand-in for a Lambda Function URL: real HTTP on 127.0.0.1, turned into the Function URL event
(payload format 2.0) and handed to a handler exactly as Lambda would, with its answer sent back."""

from __future__ import annotations

import base64
import datetime as dt
import threading
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from findings_router_local.aws_local import LambdaContext

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def function_url_event(method: str, path: str, headers: dict[str, str], body: bytes, source_ip: str) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    try:
        text, encoded = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode(), True
    raw_path, _, query = path.partition("?")
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": query,
        "headers": {k.lower(): v for k, v in headers.items()},
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "local",
            "domainName": "local.lambda-url.eu-central-1.on.aws",
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": headers.get("User-Agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "body": text,
        "isBase64Encoded": encoded,
    }


class FunctionUrlServer:
    """`with FunctionUrlServer(handler) as server: requests.post(server.url + "/path", ...)`."""

    def __init__(self, handler: Handler, function_name: str = "findings-router-ack-local") -> None:
        self.handler = handler
        self.function_name = function_name
        self._lock = threading.Lock()  # one invocation at a time, like reserved concurrency 1
        outer = self

        class _Request(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _invoke(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                event = function_url_event(self.command, self.path, dict(self.headers), body, self.client_address[0])
                with outer._lock:
                    result = outer.handler(event, LambdaContext(function_name=outer.function_name))
                payload = result.get("body") or ""
                data = base64.b64decode(payload) if result.get("isBase64Encoded") else str(payload).encode()
                self.send_response(int(result.get("statusCode", 200)))
                for key, value in (result.get("headers") or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_POST = _invoke
            do_GET = _invoke

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Request)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FunctionUrlServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
