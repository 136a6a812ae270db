"""The HTTP plumbing of the local stand-ins (PagerDuty receiver, Security Hub): a threaded server on 127.0.0.1 and a
free port, one request per connection, handing every request to an endpoint object and writing its `Answer`.

The stand-ins keep their own contract logic; this module only moves bytes, so both behave the same on the wire
(size limits, dropped connections, clients that give up).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Protocol, Self

DRAIN_LIMIT = 8 * 1024 * 1024  # bodies larger than this are not read at all
HANDLER_SOCKET_TIMEOUT = 10.0


@dataclass
class Answer:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


class Endpoint(Protocol):
    def handle_request(
        self, method: str, path: str, headers: dict[str, str], body: bytes, problem: str | None
    ) -> Answer | None:
        """The answer to one request; None drops the connection without one. `problem`: why the body was not read."""
        ...


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    endpoint: Endpoint
    too_large: str
    version: str


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"  # one request per connection: stop() never waits on idle keep-alives
    timeout = HANDLER_SOCKET_TIMEOUT

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet."""

    def version_string(self) -> str:
        return self.server.version

    def do_POST(self) -> None:
        self._dispatch()

    def do_GET(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def _read_body(self) -> tuple[bytes, str | None]:
        """(body, problem); bodies too large to drain are not read."""
        raw_length = self.headers.get("Content-Length")
        if raw_length is None:
            return b"", None
        try:
            length = int(raw_length)
        except ValueError:
            return b"", f"Invalid Content-Length {raw_length!r}"
        if length < 0:
            return b"", f"Invalid Content-Length {raw_length!r}"
        if length > DRAIN_LIMIT:
            return b"", self.server.too_large
        return self.rfile.read(length), None

    def _dispatch(self) -> None:
        body, problem = self._read_body()
        answer = self.server.endpoint.handle_request(self.command, self.path, dict(self.headers.items()), body, problem)
        if answer is None:  # drop the connection without an answer
            self.close_connection = True
            return
        try:
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(answer.body)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(answer.body)
        except OSError:  # the client gave up (e.g. timed out while the endpoint hung)
            self.close_connection = True


class LoopbackServer:
    """Serves `endpoint` on 127.0.0.1 (a free port) in a background thread until `stop`."""

    def __init__(self, endpoint: Endpoint, *, name: str, too_large: str = "Request body too large") -> None:
        self.endpoint = endpoint
        self.name = name
        self.too_large = too_large
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError(f"{self.name} already started")
        server = _Server(("127.0.0.1", 0), _Handler)
        server.endpoint, server.too_large, server.version = self.endpoint, self.too_large, f"{self.name}/1"
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, name=self.name, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and join the threads (the endpoint must release any request it holds first)."""
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()  # joins the handler threads
        if thread is not None:
            thread.join()
        self._server = self._thread = None

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) as bound: always the loopback address."""
        if self._server is None:
            raise RuntimeError(f"{self.name} is not running")
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def port(self) -> int:
        return self.address[1]


class LoopbackService:
    """A stand-in served by its `LoopbackServer` (`self._http`): started and stopped as a context manager."""

    _http: LoopbackServer

    def start(self) -> Self:
        """Bind 127.0.0.1 on a free port and serve in a background thread."""
        if self._http.running:
            raise RuntimeError(f"{self._http.name} already started")
        self._http.start()
        return self

    def stop(self) -> None:
        """Stop serving and join the server thread."""
        self._http.stop()

    def __enter__(self) -> Self:
        """Start on entry."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop on exit."""
        self.stop()

    @property
    def port(self) -> int:
        """The bound port."""
        return self._http.port
