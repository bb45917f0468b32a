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

    @property
    def permanent(self) -> bool:
        """True for errors that retrying cannot fix (4xx except 408/409/429)."""
        return 400 <= self.status < 500 and self.status not in (408, 409, 429)
