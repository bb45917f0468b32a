"""Airflow 3's public REST API (``/api/v2``), as much of it as the end-to-end test reads and drives.

Authentication: the stack sets ``[core] simple_auth_manager_all_admins = True``, under which Airflow 3.3's simple
auth manager adds an admin token to every request itself (``SimpleAllAdminMiddleware``), so no login is needed.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


class ApiError(RuntimeError):
    def __init__(self, status: int, method: str, url: str, body: str) -> None:
        super().__init__(f"{method} {url} -> {status}: {body[:2000]}")
        self.status = status


class AirflowApi:
    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        if not base_url.startswith("http://127.0.0.1:"):
            raise ValueError(f"the end-to-end stack serves on loopback only, not {base_url}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def request(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None}, doseq=True)
        url = f"{self.base_url}/api/v2{path}" + (f"?{query}" if query else "")
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        req = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 - http to loopback
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as response:  # noqa: S310
                text = response.read().decode()
        except urllib.error.HTTPError as exc:
            raise ApiError(exc.code, method, url, exc.read().decode(errors="replace")) from None
        return json.loads(text) if text else None

    def reachable(self) -> bool:
        """The API server answers (its health endpoint lives outside /api/v2 in 3.x: try both)."""
        for path in ("/api/v2/monitor/health", "/api/v2/version"):
            try:
                with urllib.request.urlopen(self.base_url + path, timeout=5) as response:  # noqa: S310
                    if response.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                continue
        return False

    # -- DAGs and runs ------------------------------------------------------------------------------
    def dag(self, dag_id: str) -> dict[str, Any] | None:
        try:
            return self.request("GET", f"/dags/{dag_id}")
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def import_errors(self) -> list[dict[str, Any]]:
        return self.request("GET", "/importErrors")["import_errors"]

    def unpause(self, dag_id: str) -> None:
        self.request("PATCH", f"/dags/{dag_id}", {"is_paused": False})

    def trigger(self, dag_id: str, run_id: str) -> str:
        run = self.request("POST", f"/dags/{dag_id}/dagRuns", {"dag_run_id": run_id, "logical_date": None})
        return str(run["dag_run_id"])

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}")

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        """The run's task instances by task id (unmapped tasks only, which is all the test DAGs have)."""
        found = self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=100)
        return {ti["task_id"]: ti for ti in found["task_instances"]}

    def tries(self, dag_id: str, run_id: str, task_id: str) -> list[dict[str, Any]]:
        """Every try of a task instance, the current one included, oldest first."""
        found = self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/tries", limit=100)
        return sorted(found["task_instances"], key=lambda ti: ti["try_number"])

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}"
        return self.request("GET", path, deserialize=True)["value"]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> list[str]:
        """The task's log as Airflow's UI shows it, one event text per line (sources first)."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}"
        content = self.request("GET", path, full_content="true")["content"]
        return [line.get("event", "") if isinstance(line, dict) else str(line) for line in content]

    def event_logs(self, dag_id: str, event: str) -> list[dict[str, Any]]:
        """The audit log's entries for a DAG (Airflow's "Audit Log" view)."""
        found = self.request("GET", "/eventLogs", dag_id=dag_id, event=event, limit=100)
        return found["event_logs"]
