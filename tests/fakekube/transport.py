"""HTTP/1.1 plumbing: a threaded keep-alive server, request parsing, fault application, response writing.

Normal responses carry Content-Length and are written with a single ``send``; watches are streamed with chunked
transfer-encoding, one JSON event per line (several lines may share a chunk), ending with the terminating chunk
unless the connection is being cut on purpose.  Nagle is disabled and nothing is logged per request.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import traceback
from collections.abc import Callable
from http import HTTPStatus
from http.server import ThreadingHTTPServer
from socketserver import StreamRequestHandler
from typing import Any
from urllib.parse import parse_qsl

from .errors import ApiError
from .faults import Faults
from .overload import Overload
from .restart import Restarts, rbac_denial
from .routes import Request, Response, Router, StreamResponse, WatchResponse
from .stats import Stats
from .store import Store
from .watchstream import stream_watch

_PHRASES = {s.value: s.phrase for s in HTTPStatus}
_WATCH_PREFIX = "/api/v1/watch/"
_MAX_LINE = 65536
_MAX_HEADERS = 200
_serving = threading.local()  # the connection a handler thread serves


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class HttpApp:
    """Turns one parsed HTTP request into a response (or a watch stream) on the handler's socket."""

    def __init__(
        self,
        router: Router,
        store: Store,
        faults: Faults,
        stats: Stats,
        stopping: threading.Event,
        restarts: Restarts | None = None,
        overload: Overload | None = None,
    ) -> None:
        self.router, self.store, self.faults, self.stats, self.stopping = router, store, faults, stats, stopping
        self.restarts = restarts or Restarts()
        self.overload = overload  # an overloaded server's budget (off unless configured)
        self.errors: list[str] = []  # unexpected exceptions in handlers (tests can assert this stays empty)

    def serve(self, h: _Handler) -> None:
        method = h.command
        path, _, raw_query = h.path.partition("?")
        query = dict(parse_qsl(raw_query, keep_blank_values=True))
        body = self._read_body(h)
        if path.startswith(_WATCH_PREFIX):
            path = "/api/v1/" + path[len(_WATCH_PREFIX) :]
            query["watch"] = "true"
        resource, handler, params, error = self.router.resolve(method, path)
        verb = "WATCH" if method == "GET" and query.get("watch", "").lower() in ("true", "1") else method
        verdict = None if error is not None else self.restarts.verdict(resource)
        if verdict == "down":
            self._finish_fault(h, "close", ApiError(503, "restarting"), verb, resource)
            return
        if verdict == "rbac":
            self._finish_fault(h, "respond", rbac_denial(verb, resource, path, params), verb, resource)
            return
        rule = None if path.startswith("/_fake/") else self.faults.match(method, path, raw_query)
        if rule is not None:
            if rule.latency:
                self.stopping.wait(rule.latency)
            if rule.mode == "close" or (rule.mode == "respond" and rule.status is not None):
                self._finish_fault(h, rule.mode, rule.error(), verb, resource)
                return
        seat = None
        if self.overload is not None and verb != "WATCH" and not path.startswith("/_fake/"):
            try:
                seat = self.overload.admit(method)  # waits for a seat; 429 when over budget
            except ApiError as exc:
                self.stats.record_request(verb, resource, exc.code)
                self.send(h, Response.error(exc))
                return
        try:
            if self.overload is not None:
                self.overload.work(seat)
            response: Response | WatchResponse | StreamResponse
            if error is not None or handler is None:
                response = Response.error(error or ApiError(500, "no handler"))
            else:
                request = Request(method, path, raw_query, query, h.headers, body, params)
                try:
                    response = handler(request)
                except ApiError as exc:
                    response = Response.error(exc)
                except Exception as exc:
                    self.errors.append(f"{method} {h.path}:\n{traceback.format_exc()}")
                    response = Response.error(ApiError(500, f"Internal error occurred: {exc!r}", "InternalError"))
            if rule is not None and rule.mode in ("after", "close_after"):
                if isinstance(response, WatchResponse) and response.watcher is not None:
                    self.store.unsubscribe(response.watcher)
                self._finish_fault(h, rule.mode, rule.error(), verb, resource)
                return
            if isinstance(response, WatchResponse):
                self._stream(h, response, verb, resource)
                return
            if isinstance(response, StreamResponse):
                self._stream_chunks(h, response, verb, resource)
                return
            self.stats.record_request(verb, resource, response.status)
            self.send(h, response)
        finally:
            if self.overload is not None:
                self.overload.release(seat)

    @staticmethod
    def _read_body(h: _Handler) -> bytes:
        if h.headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while size := int(h.rfile.readline(_MAX_LINE).split(b";")[0].strip() or b"0", 16):
                chunks.append(h.rfile.read(size))
                h.rfile.readline(_MAX_LINE)
            while h.rfile.readline(_MAX_LINE) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        length = int(h.headers.get("content-length") or 0)
        return h.rfile.read(length) if length else b""

    def _finish_fault(self, h: _Handler, mode: str, error: ApiError, verb: str, resource: str) -> None:
        if mode in ("close", "close_after"):
            self.stats.record_request(verb, resource, 0)
            h.close_connection = True
            _shutdown(h.connection)
            return
        self.stats.record_request(verb, resource, error.code)
        self.send(h, Response.error(error))

    @staticmethod
    def send(h: _Handler, response: Response) -> None:
        lines = [
            f"HTTP/1.1 {response.status} {_PHRASES.get(response.status, 'Unknown')}",
            f"Content-Type: {response.content_type}",
            f"Content-Length: {len(response.body)}",
            "Cache-Control: no-cache, private",
        ]
        lines.extend(f"{name}: {value}" for name, value in response.headers)
        if h.close_connection:
            lines.append("Connection: close")
        h.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + response.body)

    def _stream_chunks(self, h: _Handler, resp: StreamResponse, verb: str, resource: str) -> None:
        self.stats.record_request(verb, resource, 200)
        head = f"HTTP/1.1 200 OK\r\nContent-Type: {resp.content_type}\r\nCache-Control: no-cache, private\r\n"
        try:
            h.wfile.write(head.encode("latin-1") + b"Transfer-Encoding: chunked\r\n\r\n")
            for chunk in resp.chunks(self.stopping):
                if chunk:
                    h.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            h.wfile.write(b"0\r\n\r\n")
        except OSError:
            h.close_connection = True

    def _stream(self, h: _Handler, resp: WatchResponse, verb: str, resource: str) -> None:
        self.stats.record_request(verb, resource, 200)
        sock = h.connection
        if resp.watcher is not None:
            resp.watcher.on_drop = lambda: _shutdown(sock)
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-cache, private\r\n"
        h.wfile.write(head + b"Transfer-Encoding: chunked\r\n\r\n")

        def write(data: bytes) -> None:
            h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

        def client_gone() -> bool:
            readable, _, _ = select.select([sock], [], [], 0)
            if not readable:
                return False
            try:
                return sock.recv(1, socket.MSG_PEEK) == b""
            except OSError:
                return True

        try:
            ended = stream_watch(resp, self.store, write, client_gone)
            if ended in ("dropped", "client-gone"):
                h.close_connection = True
                _shutdown(sock)
                return
            h.wfile.write(b"0\r\n\r\n")
        except OSError:
            h.close_connection = True


class _Handler(StreamRequestHandler):
    """A minimal HTTP/1.1 keep-alive request loop (``http.server``'s email-based header parsing is the slowest part
    of a request, so headers are parsed here into a dict with lower-cased names)."""

    disable_nagle_algorithm = True
    server: _HTTPServer
    command = path = ""
    headers: dict[str, str]
    close_connection = False

    def setup(self) -> None:
        super().setup()
        _serving.sock = self.connection
        self.server.track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, add=False)

    def handle(self) -> None:
        with contextlib.suppress(OSError):
            while not self.close_connection and self._handle_one():
                pass

    def _handle_one(self) -> bool:
        line = self.rfile.readline(_MAX_LINE + 1)
        if not line:
            return False
        parts = line.split()
        if len(line) > _MAX_LINE or len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            self._reject(400, "malformed request line")
            return False
        headers: dict[str, str] = {}
        for _ in range(_MAX_HEADERS):
            raw = self.rfile.readline(_MAX_LINE + 1)
            if raw in (b"\r\n", b"\n", b""):
                break
            name, sep, value = raw.partition(b":")
            if not sep:
                self._reject(400, "malformed header line")
                return False
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        else:
            self._reject(431, "too many headers")
            return False
        self.command, self.path, self.headers = parts[0].decode("latin-1"), parts[1].decode("latin-1"), headers
        connection = headers.get("connection", "").lower()
        self.close_connection = connection == "close" or (parts[2] == b"HTTP/1.0" and connection != "keep-alive")
        self.server.app.serve(self)
        return True

    def _reject(self, status: int, message: str) -> None:
        self.close_connection = True
        HttpApp.send(self, Response.error(ApiError(status, message)))


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], app: HttpApp) -> None:
        self.app = app
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, sock: socket.socket, *, add: bool) -> None:
        with self._conn_lock:
            (self._connections.add if add else self._connections.discard)(sock)

    def close_connections(self) -> None:
        """Cut every client connection but the one this thread is serving (a control request's own)."""
        current = getattr(_serving, "sock", None)
        with self._conn_lock:
            connections = [sock for sock in self._connections if sock is not current]
        for sock in connections:
            _shutdown(sock)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Connection resets are normal (clients and fault injection cut sockets); anything else is recorded."""
        text = traceback.format_exc()
        if "ConnectionResetError" not in text and "BrokenPipeError" not in text and "OSError" not in text:
            self.app.errors.append(text)

    def server_close(self) -> None:
        self.socket.close()
        for thread in list(vars(self).get("_threads") or ()):
            thread.join(timeout=2)


class HttpServerThread:
    """Owns the listening socket and the accept loop thread."""

    def __init__(self, host: str, port: int, app: HttpApp, on_stop: Callable[[], None]) -> None:
        self._httpd = _HTTPServer((host, port), app)
        self._on_stop = on_stop
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fakekube-http", daemon=True
        )

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread.start()

    def close_connections(self) -> None:
        """Cut every open client connection (the server keeps listening)."""
        self._httpd.close_connections()

    def stop(self) -> None:
        self._on_stop()  # end watch streams first so their handler threads return
        self._httpd.shutdown()
        self._httpd.close_connections()
        self._httpd.server_close()
        self._thread.join(timeout=5)
