"""A broken or hostile Kubernetes API server on 127.0.0.1, for the client's robustness tests.

It speaks HTTP/1.1 at the byte level so it can misbehave where a real server never would:
answer one byte every half second (in the status line, the headers or the body), send a
gigabyte, stream a watch line that never ends, or answer garbage, HTML or the wrong JSON shape.
Every request is matched against the installed :class:`Rule` s (method, path regex, query regex,
how many times); the first that matches decides the answer.  A request no rule matches is
forwarded to ``upstream`` (a :class:`~tests.fakekube.FakeKubeServer` URL), so a whole scheduler can
run against a server that is hostile only where a test says; without an upstream it gets a 404.

Requests in absolute form (``GET http://host/path``) are served too, so the server also works as
the HTTP proxy of a client configured with one (the client's urllib3 path).

Nothing here waits on the wall clock except the drips, and every wait ends when the server stops,
so a test that stops it never waits for a misbehaviour to play out.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO
from urllib.parse import urlsplit

HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection"})


@dataclass(frozen=True)
class Request:
    method: str
    target: str  # path and query, as sent
    headers: dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]

    @property
    def query(self) -> str:
        return self.target.partition("?")[2]


class Conn:
    """The accepted connection a behaviour writes to; ``write`` fails once the client is gone."""

    def __init__(self, sock: socket.socket, stopping: threading.Event) -> None:
        self.sock = sock
        self.stopping = stopping
        self.sent = 0
        self.keep_alive = True

    def write(self, data: bytes) -> None:
        self.sock.sendall(data)
        self.sent += len(data)

    def wait(self, seconds: float) -> bool:
        """Sleep ``seconds``; True when the server is stopping (the behaviour should return)."""
        return self.stopping.wait(seconds)


Behaviour = Callable[[Conn, Request], None]


def response_head(status: int, headers: dict[str, str]) -> bytes:
    reason = http.client.responses.get(status, "Unknown")
    lines = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def answer(status: int, body: bytes, content_type: str = "application/json", **headers: str) -> Behaviour:
    """A well-formed HTTP answer with whatever body (garbage JSON, HTML, an array...)."""

    def behave(conn: Conn, request: Request) -> None:
        head = {"Content-Type": content_type, "Content-Length": str(len(body)), **headers}
        conn.write(response_head(status, head) + body)

    return behave


def drip(interval: float, status: int = 200, body: bytes = b'{"kind":"PodList","items":[]}' + b" " * 4000) -> Behaviour:
    """The whole answer, status line included, one byte every ``interval`` seconds."""
    data = response_head(status, {"Content-Type": "application/json", "Content-Length": str(len(body))}) + body

    def behave(conn: Conn, request: Request) -> None:
        conn.keep_alive = False
        for i in range(len(data)):
            conn.write(data[i : i + 1])
            if conn.wait(interval):
                return

    return behave


def drip_body(interval: float, head_status: int = 200, size: int = 4000) -> Behaviour:
    """Prompt headers, then the body one byte every ``interval`` seconds."""

    def behave(conn: Conn, request: Request) -> None:
        conn.keep_alive = False
        conn.write(response_head(head_status, {"Content-Type": "application/json", "Content-Length": str(size)}))
        conn.write(b"{")
        for _ in range(size - 1):
            if conn.wait(interval):
                return
            conn.write(b" ")

    return behave


def huge(size: int, *, chunked: bool = False, status: int = 200, piece: int = 1 << 16) -> Behaviour:
    """A ``size``-byte JSON-looking answer (Content-Length, or chunked without one), generated as it is sent."""
    filler = b" " * piece

    def behave(conn: Conn, request: Request) -> None:
        conn.keep_alive = False
        head = {"Content-Type": "application/json"}
        head.update({"Transfer-Encoding": "chunked"} if chunked else {"Content-Length": str(size)})
        conn.write(response_head(status, head))
        left = size
        opening = b'{"kind":"PodList","items":['
        conn.write(b"%x\r\n%s\r\n" % (len(opening), opening) if chunked else opening)
        left -= len(opening)
        while left > 0 and not conn.stopping.is_set():
            data = filler[: min(piece, left)]
            conn.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
            left -= len(data)

    return behave


def endless_line(piece: int = 1 << 14, pause: float = 0.0) -> Behaviour:
    """A watch (chunked 200) whose first event never ends: ``{"type":"ADDED","object":{"x":"xxxx...``."""

    def behave(conn: Conn, request: Request) -> None:
        conn.keep_alive = False
        conn.write(response_head(200, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}))
        start = b'{"type":"ADDED","object":{"x":"'
        conn.write(b"%x\r\n%s\r\n" % (len(start), start))
        data = b"%x\r\n%s\r\n" % (piece, b"x" * piece)
        while not conn.stopping.is_set():
            conn.write(data)
            if pause and conn.wait(pause):
                return

    return behave


def watch_lines(*lines: bytes, then_hold: bool = False, piece: int = 1 << 16) -> Behaviour:
    """A watch (chunked 200) sending ``lines`` (each ends with a newline) in HTTP chunks of ``piece`` bytes,
    then ending or holding the stream open."""

    def behave(conn: Conn, request: Request) -> None:
        conn.keep_alive = False
        conn.write(response_head(200, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}))
        data = b"".join(line + b"\n" for line in lines)
        for start in range(0, len(data), piece):
            part = data[start : start + piece]
            conn.write(b"%x\r\n%s\r\n" % (len(part), part))
        if then_hold:
            conn.stopping.wait()
        conn.write(b"0\r\n\r\n")

    return behave


def trickle(interval: float, data: bytes = b"\n") -> Behaviour:
    """A watch (chunked 200) that sends ``data`` (a blank line: no event) every ``interval`` seconds, never ending."""

    def behave(conn: Conn, request: Request) -> None:
        conn.keep_alive = False
        conn.write(response_head(200, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}))
        while not conn.wait(interval):
            conn.write(b"%x\r\n%s\r\n" % (len(data), data))

    return behave


def then_forward(action: Callable[[Request], None]) -> Behaviour:
    """Run ``action`` (e.g. compact the fake's history), then forward the request upstream as usual."""

    def behave(conn: Conn, request: Request) -> None:
        action(request)

    behave.forward = True  # type: ignore[attr-defined]
    return behave


def hang() -> Behaviour:
    """Read the request, never answer (until the server stops)."""

    def behave(conn: Conn, request: Request) -> None:
        conn.keep_alive = False
        conn.stopping.wait()

    return behave


@dataclass
class Rule:
    behaviour: Behaviour
    method: str | None = None
    path: str = ""
    query: str | None = None
    times: int | None = None  # None: for ever
    fired: int = 0
    _path: re.Pattern[str] = field(init=False, repr=False)
    _query: re.Pattern[str] | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._path = re.compile(self.path)
        self._query = re.compile(self.query) if self.query is not None else None

    def matches(self, request: Request) -> bool:
        if self.method is not None and self.method != request.method:
            return False
        if not self._path.search(request.path):
            return False
        return self._query is None or bool(self._query.search(request.query))


class HostileServer:
    """``with HostileServer(upstream=fake.url) as hostile: hostile.add(drip(0.5), method="POST")``."""

    def __init__(self, upstream: str | None = None) -> None:
        self.upstream = urlsplit(upstream) if upstream else None
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._lock = threading.Lock()
        self._rules: list[Rule] = []
        self._socks: set[socket.socket] = set()
        self._upstreams: set[http.client.HTTPConnection] = set()  # relays of this server's connections
        self._threads: list[threading.Thread] = []
        self.stopping = threading.Event()
        self.requests: list[Request] = []  # every request seen, in order
        self.hostile_bytes = 0  # bytes the behaviours wrote (forwarded answers excluded)
        self._acceptor = threading.Thread(target=self._accept, name="hostile-accept", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def __enter__(self) -> HostileServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._acceptor.start()

    def stop(self, timeout: float = 10.0) -> None:
        self.stopping.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() (close alone does not)
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            socks = list(self._socks) + [u.sock for u in self._upstreams if u.sock is not None]
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for thread in [self._acceptor, *self._threads]:
            thread.join(max(0.0, deadline - time.monotonic()))

    # -- rules -----------------------------------------------------------------------------------
    def add(
        self,
        behaviour: Behaviour,
        *,
        method: str | None = None,
        path: str = "",
        query: str | None = None,
        times: int | None = None,
    ) -> Rule:
        rule = Rule(behaviour, method, path, query, times)
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def seen(self, method: str | None = None, path: str = "") -> list[Request]:
        pattern = re.compile(path)
        with self._lock:
            return [r for r in self.requests if (method is None or r.method == method) and pattern.search(r.path)]

    def _rule_for(self, request: Request) -> Rule | None:
        with self._lock:
            self.requests.append(request)
            for rule in self._rules:
                if rule.matches(request) and (rule.times is None or rule.fired < rule.times):
                    rule.fired += 1
                    return rule
        return None

    # -- connections -----------------------------------------------------------------------------
    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(sock,), name="hostile-conn", daemon=True)
            with self._lock:
                self._socks.add(sock)
                self._threads = [t for t in self._threads if t.is_alive()]
                self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        upstream: http.client.HTTPConnection | None = None
        reader = sock.makefile("rb")
        try:
            for request in _requests(reader):
                conn = Conn(sock, self.stopping)
                rule = self._rule_for(request)
                try:
                    forward = rule is None
                    if rule is not None:
                        try:
                            rule.behaviour(conn, request)
                        finally:
                            with self._lock:
                                self.hostile_bytes += conn.sent
                        forward = getattr(rule.behaviour, "forward", False)
                    if not forward:
                        pass
                    elif self.upstream is None:
                        answer(404, b'{"kind":"Status","code":404,"reason":"NotFound"}')(conn, request)
                    else:
                        if upstream is None:
                            upstream = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port)
                            with self._lock:
                                self._upstreams.add(upstream)
                        _forward(upstream, conn, request)
                except OSError:
                    return  # the client went away mid-answer
                except http.client.HTTPException:
                    return
                if not conn.keep_alive or self.stopping.is_set():
                    return
        finally:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            reader.close()
            sock.close()
            with self._lock:
                self._socks.discard(sock)
                self._upstreams.discard(upstream)  # type: ignore[arg-type]
            if upstream is not None:
                upstream.close()


def _requests(reader: BinaryIO) -> Iterator[Request]:
    """The requests of one keep-alive connection (bodies by Content-Length only, as the client sends them)."""
    while True:
        line = reader.readline(65537)
        if not line:
            return
        if not line.strip():
            continue
        method, target, _ = line.decode("latin-1").split(" ", 2)
        headers: dict[str, str] = {}
        while True:
            header = reader.readline(65537)
            if header in (b"\r\n", b"\n", b""):
                break
            name, _, value = header.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        body = reader.read(int(headers.get("content-length") or 0)) if headers.get("content-length") else b""
        if target.startswith(("http://", "https://")):  # a request to us as a proxy
            parts = urlsplit(target)
            target = parts.path + (f"?{parts.query}" if parts.query else "")
        yield Request(method, target, headers, body)


def _forward(upstream: http.client.HTTPConnection, conn: Conn, request: Request) -> None:
    """Relay one request to the upstream server and its answer back (streamed answers chunk by chunk)."""
    headers = {k: v for k, v in request.headers.items() if k not in HOP_BY_HOP and k != "host"}
    try:
        upstream.request(request.method, request.target, body=request.body or None, headers=headers)
        response = upstream.getresponse()
    except (OSError, http.client.HTTPException):
        upstream.close()
        raise
    head = {k: v for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP}
    if response.chunked or response.length is None:
        conn.write(response_head(response.status, {**head, "Transfer-Encoding": "chunked"}))
        while data := response.read1(1 << 16):
            conn.write(b"%x\r\n%s\r\n" % (len(data), data))
        conn.write(b"0\r\n\r\n")
    else:
        data = response.read()
        conn.write(response_head(response.status, {**head, "Content-Length": str(len(data))}) + data)
    if response.will_close:
        upstream.close()
