"""Request/response values and the URL router shared by the API handlers and the HTTP transport."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ApiError, bad_request, path_not_found
from .selectors import ObjectFilter
from .watchers import Watcher, encode


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    raw_query: str
    query: Mapping[str, str]  # last value wins for repeated parameters
    headers: Mapping[str, str]  # lower-cased names
    body: bytes
    params: Mapping[str, str] = field(default_factory=dict)  # from the route pattern

    def json(self, *, default: Any = None) -> Any:
        if not self.body.strip():
            if default is not None:
                return default
            raise bad_request("the request body is empty")
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise bad_request(f"the object provided is unrecognized: {exc}") from exc

    def flag(self, name: str) -> bool:
        return self.query.get(name, "").lower() in ("true", "1")

    def int_param(self, name: str) -> int | None:
        raw = self.query.get(name)
        if raw in (None, ""):
            return None
        try:
            return int(raw)
        except ValueError as exc:
            raise bad_request(f'{name}: Invalid value: "{raw}": must be an integer') from exc


@dataclass(frozen=True, slots=True)
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, obj: Any, status: int = 200) -> Response:
        return cls(status, encode(obj))

    @classmethod
    def error(cls, err: ApiError) -> Response:
        return cls(err.code, err.body(), headers=err.headers)


@dataclass(frozen=True)
class WatchResponse:
    """Tells the transport to stream a watch (HTTP 200, chunked, one JSON event per line)."""

    watcher: Watcher | None  # None when ``expired`` is set
    filter: ObjectFilter
    timeout: float
    bookmarks: bool
    bookmark_interval: float
    kind: str  # "Pod", for BOOKMARK objects
    api_version: str
    expired: ApiError | None = None
    bookmark_shape: str = "short"
    bookmark_before_timeout: bool = False


@dataclass(frozen=True)
class StreamResponse:
    """Tells the transport to stream ``chunks`` (HTTP 200, chunked) until the iterator ends -- a followed log.
    The iterator gets the server's stopping event so it can end when the server stops."""

    chunks: Callable[[threading.Event], Iterator[bytes]]
    content_type: str = "text/plain"


Handler = Callable[[Request], "Response | WatchResponse | StreamResponse"]


@dataclass(frozen=True)
class Route:
    regex: re.Pattern[str]
    resource: str
    handlers: Mapping[str, Handler]


class Router:
    def __init__(self) -> None:
        self._routes: list[Route] = []

    def add(self, pattern: str, resource: str, **handlers: Handler) -> None:
        """``pattern`` like ``/api/v1/namespaces/{namespace}/pods/{name}``; handlers keyed by HTTP method."""
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)
        self._routes.append(Route(re.compile(regex + "/?"), resource, handlers))

    def resolve(self, method: str, path: str) -> tuple[str, Handler | None, dict[str, str], ApiError | None]:
        """(resource, handler, path params, error): error is 404 for unknown paths, 405 for unknown methods."""
        for route in self._routes:
            match = route.regex.fullmatch(path)
            if match is None:
                continue
            handler = route.handlers.get(method)
            if handler is None:
                error = ApiError(405, "the server does not allow this method on the requested resource", details={})
                return route.resource, None, {}, error
            return route.resource, handler, match.groupdict(), None
        return "other", None, {}, path_not_found()

    def resource_of(self, path: str) -> str:
        for route in self._routes:
            if route.regex.fullmatch(path):
                return route.resource
        return "other"
