"""The executor's exception hierarchy.

Every error the executor raises on purpose derives from :class:`ExecutorError`, so callers
(the CLI, infra's stack program, the scheduler loop) can catch one type and print a message
that names the offending file, section, key and value.  Lower-level causes (``yaml`` errors,
``json`` errors, HTTP errors) are chained with ``raise ... from exc`` so nothing is lost.
"""

from __future__ import annotations


class ExecutorError(Exception):
    """Base class for every deliberate error of the executor package."""


class QuantityError(ExecutorError, ValueError):
    """A Kubernetes resource quantity is malformed or out of range."""


class ConfigError(ExecutorError, ValueError):
    """airflow.cfg (or an environment override) is invalid.

    ``source`` is the file path or ``env:AIRFLOW__...`` name; ``section`` and ``key`` locate the
    setting.  The rendered message always names all three so an operator can fix it at once.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        section: str | None = None,
        key: str | None = None,
        value: object = None,
    ) -> None:
        self.source = source
        self.section = section
        self.key = key
        self.value = value
        self.reason = message
        where = []
        if source:
            where.append(str(source))
        if section:
            where.append(f"[{section}]")
        if key:
            where.append(key)
        prefix = " ".join(where)
        shown = f" = {value!r}" if value is not None else ""
        super().__init__(f"{prefix}{shown}: {message}" if prefix else message)


class ConfigErrors(ConfigError):
    """Several settings are invalid at once; ``problems`` holds each :class:`ConfigError`.

    Raised instead of the first error so an operator fixes a file in one pass (as the stack
    validator does).  It is a :class:`ConfigError`, so callers catching one need no change.
    """

    def __init__(self, problems: list[ConfigError], *, source: str | None = None) -> None:
        self.problems = list(problems)
        where = f" in {source}" if source else ""
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"{len(self.problems)} invalid settings{where}:\n{lines}")
        self.source = source


def raise_all(problems: list[ConfigError], *, source: str | None = None) -> None:
    """Raise nothing, the one problem, or :class:`ConfigErrors` listing all of them."""
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise ConfigErrors(problems, source=source) from problems[0]


class TemplateError(ExecutorError, ValueError):
    """A pod template cannot be loaded: bad YAML, wrong kind, schema violation, path escape."""


class SchemaError(ExecutorError, ValueError):
    """A Kubernetes object does not validate against the pinned OpenAPI schema."""


class PodPolicyError(ExecutorError, ValueError):
    """A pod would violate the Pod Security Standards "restricted" profile or platform policy."""


class TaskSpecError(ExecutorError, ValueError):
    """A task description (key, command, kubernetes_config) is malformed."""


class KubeApiError(ExecutorError):
    """A Kubernetes API call failed.

    ``status`` is the HTTP status (0 for connection errors), ``reason`` the Kubernetes Status
    reason (``AlreadyExists``, ``Forbidden``...), ``retry_after`` the server's Retry-After hint
    in seconds when given.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        reason: str = "",
        retry_after: float | None = None,
        body: object = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.retry_after = retry_after
        self.body = body


class Unauthorized(KubeApiError):
    """401: the credentials were refused (an expired token, a wrong kubeconfig)."""


class Forbidden(KubeApiError):
    """403: RBAC, Pod Security admission, or another admission plugin refused the request."""


class QuotaExceeded(Forbidden):
    """403 from ResourceQuota admission: the namespace is (momentarily) full.

    The real quota charges a pod at create time and releases it only when the quota controller
    recalculates, so this is backpressure, not a verdict on the task.
    """


class NotFound(KubeApiError):
    """404: the object (or the API, e.g. metrics.k8s.io) does not exist."""


class AlreadyExists(KubeApiError):
    """409 ``AlreadyExists``: an object of that name exists (deterministic pod names make it meaningful)."""


class Conflict(KubeApiError):
    """409 with another reason (``Conflict``): an optimistic-concurrency race; nothing was applied."""


class Gone(KubeApiError):
    """410: the requested resourceVersion was compacted away; relist."""


class DeadlineExceeded(KubeApiError):
    """No complete answer within the exchange's deadline (connect, headers and body together); status 0.

    Like a lost connection, the request may or may not have been applied.
    """


class Cancelled(KubeApiError):
    """The client was shut down while the request was in flight (or before it started); status 0, never retried."""


class BadResponse(KubeApiError):
    """The server answered, but not with anything usable: not JSON, the wrong JSON shape, or too large.

    ``status`` is the answer's HTTP status.  The request may have been applied (a 201 with a garbage
    body), so callers retry it like a lost connection; a retried create finds its pod by name.
    """


class ResponseTooLarge(BadResponse):
    """An answer (or one watch event) over the client's byte limit; it was not read past the limit."""


def api_error(
    message: str, *, status: int, reason: str = "", retry_after: float | None = None, body: object = None
) -> KubeApiError:
    """The :class:`KubeApiError` subclass callers branch on, for an HTTP ``status`` and Status ``reason``."""
    kind: type[KubeApiError] = KubeApiError
    if status == 401:
        kind = Unauthorized
    elif status == 403:
        kind = QuotaExceeded if "exceeded quota" in message else Forbidden
    elif status == 404:
        kind = NotFound
    elif status == 409:
        kind = AlreadyExists if reason == "AlreadyExists" else Conflict
    elif status == 410 or reason in ("Expired", "Gone"):
        kind = Gone
    return kind(message, status=status, reason=reason, retry_after=retry_after, body=body)
