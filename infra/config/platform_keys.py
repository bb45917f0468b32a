"""Stack keys of day-2 operations and of what users of the official Helm chart expect (issue 14).

The rows here join :data:`airflow_k8s.infra.config.stack_keys.KEYS` (and ``Pulumi.yaml``, in the same
order) before the secret keys: high availability, DNS and task egress, log retention, Secrets and
images brought by the operator, per-role extras and placement, DAG delivery with git-sync,
housekeeping, UI access and Airflow's own metrics.  Kept apart so the main table stays a table of the
platform's core; each row is ``(name, type, default, description)`` and :data:`VALIDATORS` holds the
checks applied to the type-parsed value.  Pure Python, imports nothing from ``stack_keys``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Row = tuple[str, str, Any, str]


def _range(low: int, high: int) -> Callable[[int], int]:
    def check(value: int) -> int:
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return check


ROWS: tuple[Row, ...] = (
    # --- high availability
    (
        "schedulerReplicas",
        "integer",
        1,
        "Schedulers run active-active (Airflow 3 HA), each with this executor owning its own task pods; 2+ "
        "roll one at a time and share workerPodsMax/workerPodsMin.",
    ),
)

VALIDATORS: dict[str, Callable[[Any], Any]] = {
    "schedulerReplicas": _range(1, 10),
}
