"""The identity of one task try: Airflow's TaskInstanceKey, validated, with a stable digest.

A leaf module: both :mod:`~airflow_k8s.executor.tasks.task` (what a task is) and
:mod:`~airflow_k8s.executor.tasks.identity` (how its pod is named and labelled) import it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

from airflow_k8s.executor.contract.errors import TaskSpecError

ID_MAX = 250  # Airflow's ID_LEN for dag_id / task_id / run_id.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, order=True)
class TaskKey:
    """Identity of one task try: Airflow's TaskInstanceKey."""

    dag_id: str
    task_id: str
    run_id: str
    map_index: int = -1
    try_number: int = 1

    def __post_init__(self) -> None:
        for name in ("dag_id", "task_id", "run_id"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value or len(value) > ID_MAX or _CONTROL.search(value):
                raise TaskSpecError(f"{name} = {value!r}: expected 1-{ID_MAX} printable characters")
        if not isinstance(self.map_index, int) or isinstance(self.map_index, bool) or self.map_index < -1:
            raise TaskSpecError(f"map_index = {self.map_index!r}: expected a whole number >= -1")
        if not isinstance(self.try_number, int) or isinstance(self.try_number, bool) or self.try_number < 0:
            raise TaskSpecError(f"try_number = {self.try_number!r}: expected a whole number >= 0")

    def canonical(self) -> str:
        """Stable text form, the input of the pod-name hash."""
        return json.dumps([self.dag_id, self.task_id, self.run_id, self.map_index, self.try_number])

    def digest(self) -> str:
        return hashlib.sha256(self.canonical().encode("utf-8")).hexdigest()

    def __str__(self) -> str:
        return f"{self.dag_id}.{self.task_id} run={self.run_id} map={self.map_index} try={self.try_number}"
