"""One invalid stack setting: the key, its value (never shown for secrets) and why."""

from __future__ import annotations

from dataclasses import dataclass

from airflow_k8s.infra.config.stack_keys import PROJECT


@dataclass(frozen=True)
class Problem:
    key: str
    value: object
    reason: str
    secret: bool = False

    def __str__(self) -> str:
        shown = "" if self.value is None else (" = <secret>" if self.secret else f" = {self.value!r}")
        return f"{PROJECT}:{self.key}{shown}: {self.reason}"
