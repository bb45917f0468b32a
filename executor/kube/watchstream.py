"""The events of one open watch, as the server streams them: one JSON object per line, each bounded.

Reading is linear and bounded whatever the server sends: the body is read in pieces of at most
64 KiB (never a whole HTTP chunk at once, which a server may declare a gigabyte long); the pieces
of a line that has not ended yet are kept in a list and joined once, when its newline comes, so a
long line is never re-copied for every piece; and a line longer than ``max_line`` bytes ends the
watch with :class:`~airflow_k8s.executor.contract.errors.ResponseTooLarge` as soon as it passes
the limit (the watcher logs it and relists: the event it could not read is lost).  A line that is
not a JSON object with a ``type`` and an ``object`` is a
:class:`~airflow_k8s.executor.contract.errors.BadResponse`.

The stream's exchange ticket bounds it in time too (:mod:`~airflow_k8s.executor.kube.deadlines`):
headers within the request deadline, the whole stream within ``timeoutSeconds`` plus the request
timeout, so a server that trickles whitespace cannot hold a watch open for ever.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import urllib3

from airflow_k8s.executor.contract import jsonfast
from airflow_k8s.executor.contract.errors import BadResponse, DeadlineExceeded, KubeApiError, ResponseTooLarge
from airflow_k8s.executor.kube.decoding import excerpt
from airflow_k8s.executor.kube.exchange import Stream

_PIECE = 1 << 16


class WatchStream:
    """The events of one open watch, iterated once; :meth:`close` ends it from any thread.

    Closing cuts the socket, so a read blocked on a quiet watch returns at once and the iteration
    simply ends (no error: the caller asked for it).
    """

    def __init__(self, stream: Stream, max_line: int, loads: Callable[[bytes], Any] = jsonfast.loads) -> None:
        self._stream = stream
        self._loads = loads
        self._what = f"watch {stream.what}"
        self._max_line = max_line
        self._closed = threading.Event()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        ticket = self._stream.ticket
        try:
            for line in self._lines():
                if line.strip():
                    yield self._event(line)
            if ticket.expired:
                raise DeadlineExceeded(f"{self._what}: the stream outlived its deadline", status=0)
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            if self._closed.is_set():
                return
            if ticket.expired:
                raise DeadlineExceeded(f"{self._what}: the stream outlived its deadline", status=0) from exc
            raise KubeApiError(f"{self._what}: connection lost: {exc}", status=0) from exc
        finally:
            self._stream.release()

    def _lines(self) -> Iterator[bytes]:
        """Complete lines, each joined once from the pieces it came in."""
        pending: list[bytes] = []  # pieces of the line still open; none holds a newline
        size = 0
        for piece in self._stream.response.stream(_PIECE, decode_content=False):
            start = 0
            while (end := piece.find(b"\n", start)) >= 0:
                if pending:
                    pending.append(piece[start:end])
                    size += end - start
                    self._check(size)
                    line = b"".join(pending)
                    pending, size = [], 0
                else:
                    self._check(end - start)
                    line = piece[start:end]
                yield line
                start = end + 1
            if start < len(piece):
                pending.append(piece[start:] if start else piece)
                size += len(piece) - start
                self._check(size)
        if pending and not self._closed.is_set():
            yield b"".join(pending)  # a last line without its newline

    def _check(self, size: int) -> None:
        if size > self._max_line:
            raise ResponseTooLarge(
                f"{self._what}: an event longer than {self._max_line} bytes (kube_max_response_mib); "
                "the watch is ended and the pods relisted",
                status=200,
            )

    def _event(self, line: bytes) -> dict[str, Any]:
        try:
            event = self._loads(line)
        except (ValueError, RecursionError) as exc:
            if self._closed.is_set():  # a line cut short by close()
                raise OSError("closed") from exc
            raise BadResponse(f"{self._what}: malformed event ({exc}): {excerpt(line)}", status=200) from exc
        if not (
            isinstance(event, dict) and isinstance(event.get("type"), str) and isinstance(event.get("object"), dict)
        ):
            raise BadResponse(
                f"{self._what}: an event must be an object with a type and an object: {excerpt(line)}", status=200
            )
        return event

    def close(self) -> None:
        """End the watch now; safe from any thread, more than once, and after the stream ended."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._stream.ticket.cancel()
