"""Airflow's REST API (``/api/v2``) of the platform's api-server, as a user reaches it - logged in.

The address is a Ready endpoint of the api-server Service (a pod IP on the kit's bridge, 10.244.0.0/24: the
only non-loopback network the tier may use), re-read whenever a request fails to connect, so a rolled
api-server is followed.  Login is Airflow's default simple auth manager: the generated ``admin`` password is in
the api-server pod's passwords file, ``POST /auth/token`` turns it into a JWT (signed with the platform's JWT
secret, so it stays valid across api-server pods until that secret changes).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from tests.realcluster.kit import BRIDGE_PREFIX, Kit, wait_for

PASSWORDS_FILE = "/tmp/simple_auth_manager_passwords.json.generated"
TERMINAL = ("success", "failed")


class ApiError(RuntimeError):
    def __init__(self, status: int, method: str, url: str, body: str) -> None:
        super().__init__(f"{method} {url} -> {status}: {body[:2000]}")
        self.status = status


@dataclass
class AirflowApi:
    kit: Kit
    namespace: str
    service: str
    port: int = 8080
    token: str | None = None
    base_url: str = ""
    log: list[str] = field(default_factory=list)

    # -- where and who ---------------------------------------------------------------------------------------------
    def endpoint(self) -> str:
        def ready_address() -> str | None:
            endpoints = self.kit.get("endpoints", self.service, self.namespace)
            for subset in endpoints.get("subsets") or []:
                for address in subset.get("addresses") or []:
                    if address["ip"].startswith(BRIDGE_PREFIX):
                        return f"http://{address['ip']}:{self.port}"
            return None

        self.base_url = wait_for(ready_address, what=f"a ready endpoint of Service {self.service}", timeout=900)
        return self.base_url

    def login(self) -> None:
        pods = self.kit.items("pods", self.namespace, "app.kubernetes.io/component=api-server")
        running = [
            p for p in pods if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
        ]
        last: Exception | None = None
        for pod in running:
            try:
                text = self.kit.kubectl("exec", pod["metadata"]["name"], "-n", self.namespace, "-c", "api-server",
                                        "--", "cat", PASSWORDS_FILE)  # fmt: skip
                password = json.loads(text)["admin"]
                answer = self._call("POST", "/auth/token", {"username": "admin", "password": password}, auth=False)
                self.token = answer["access_token"]
                return
            except Exception as exc:
                last = exc
        raise RuntimeError(f"could not log in to the api-server ({len(running)} running pods): {last}")

    # -- requests --------------------------------------------------------------------------------------------------
    def _call(
        self, method: str, path: str, body: Any = None, *, auth: bool = True, params: dict[str, Any] | None = None
    ) -> Any:
        if not self.base_url:
            self.endpoint()
        query = urllib.parse.urlencode({k: v for k, v in (params or {}).items() if v is not None}, doseq=True)
        url = f"{self.base_url}{path}" + (f"?{query}" if query else "")
        headers = {"Content-Type": "application/json"}
        if auth and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - the kit's bridge only
                text = response.read().decode()
        except urllib.error.HTTPError as exc:
            raise ApiError(exc.code, method, url, exc.read().decode(errors="replace")) from None
        return json.loads(text) if text else None

    def request(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        """``/api/v2`` + ``path``; follows a rolled api-server (new endpoint, new login) for up to 15 minutes."""
        deadline = time.monotonic() + 900
        while True:
            try:
                if self.token is None:
                    self.login()
                return self._call(method, f"/api/v2{path}", body, params=params)
            except ApiError as exc:
                if exc.status == 401 and time.monotonic() < deadline:
                    self.token = None
                    continue
                if exc.status in (502, 503) and time.monotonic() < deadline:
                    time.sleep(3)
                    continue
                raise
            except (urllib.error.URLError, OSError, RuntimeError) as exc:
                if time.monotonic() > deadline:
                    raise
                self.log.append(f"{method} {path}: {exc}; following the api-server")
                time.sleep(3)
                self.base_url = ""

    # -- DAGs, runs, tasks -----------------------------------------------------------------------------------------
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

    def scheduled_run(self, dag_id: str, timeout: float = 900) -> str:
        """Unpause ``dag_id`` and return the run its schedule creates (``catchup=False``: the latest interval)."""
        self.unpause(dag_id)

        def created() -> str | None:
            runs = self.request("GET", f"/dags/{dag_id}/dagRuns", run_type="scheduled", limit=10)["dag_runs"]
            return str(runs[0]["dag_run_id"]) if runs else None

        return wait_for(created, what=f"the scheduler to create a scheduled run of {dag_id}", timeout=timeout)

    def wait_for_dags(self, dag_ids: list[str], timeout: float = 900, *, unpause: bool = True) -> None:
        def parsed() -> bool:
            return all(self.dag(d) is not None for d in dag_ids)

        try:
            wait_for(parsed, what=f"the dag-processor to parse {dag_ids}", timeout=timeout, period=5)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; import errors: {self.import_errors()}") from None
        if unpause:
            for dag_id in dag_ids:
                self.unpause(dag_id)

    def trigger(self, dag_id: str, run_id: str) -> str:
        run = self.request("POST", f"/dags/{dag_id}/dagRuns", {"dag_run_id": run_id, "logical_date": None})
        return str(run["dag_run_id"])

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}")

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 1500) -> dict[str, Any]:
        def ended() -> dict[str, Any] | None:
            run = self.dag_run(dag_id, run_id)
            return run if run["state"] in TERMINAL else None

        return wait_for(ended, what=f"run {dag_id} {run_id} to end", timeout=timeout, period=3)

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        found = self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=100)
        return {ti["task_id"]: ti for ti in found["task_instances"]}

    def tries(self, dag_id: str, run_id: str, task_id: str) -> list[dict[str, Any]]:
        found = self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/tries", limit=100)
        return sorted(found["task_instances"], key=lambda ti: ti["try_number"])

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}"
        return self.request("GET", path, deserialize=True)["value"]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> list[str]:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}"
        content = self.request("GET", path, full_content="true")["content"]
        return [line.get("event", "") if isinstance(line, dict) else str(line) for line in content]

    def set_variable(self, key: str, value: str) -> None:
        self.request("POST", "/variables", {"key": key, "value": value})

    def event_logs(self, dag_id: str, event: str) -> list[dict[str, Any]]:
        return self.request("GET", "/eventLogs", dag_id=dag_id, event=event, limit=100)["event_logs"]
