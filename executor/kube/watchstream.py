"""The events of one open watch, as the server streams them: one JSON object per line."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

import urllib3

from airflow_k8s.executor.contract import jsonfast
from airflow_k8s.executor.contract.errors import KubeApiError


class WatchStream:
    """The events of one open watch, iterated once; :meth:`close` ends it from any thread.

    Closing shuts the socket down, so a read blocked on a quiet watch returns at once and the
    iteration simply ends (no error: the caller asked for it).
    """

    def __init__(self, response: Any, path: str) -> None:
        self._response = response
        self._path = path
        self._closed = threading.Event()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        response = self._response
        try:
            buffer = b""
            for chunk in response.stream(amt=None, decode_content=False):
                data = buffer + chunk if buffer else chunk
                *lines, buffer = data.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield jsonfast.loads(line)
            if buffer.strip() and not self._closed.is_set():
                yield jsonfast.loads(buffer)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            if self._closed.is_set():
                return
            raise KubeApiError(f"watch {self._path}: connection lost: {exc}", status=0) from exc
        except ValueError as exc:  # JSONDecodeError / orjson.JSONDecodeError
            if self._closed.is_set():  # a line cut short by close()
                return
            raise KubeApiError(f"watch {self._path}: malformed event: {exc}", status=0) from exc
        finally:
            response.release_conn()

    def close(self) -> None:
        """End the watch now; safe from any thread, more than once, and after the stream ended."""
        if self._closed.is_set():
            return
        self._closed.set()
        sock = getattr(getattr(self._response, "connection", None), "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
