"""A real Airflow 3 around this executor, on one machine: the stack the end-to-end test runs.

* **Metadata database**: a PostgreSQL cluster of its own (:mod:`.postgres`), ``airflow db migrate``'d.
* **Kubernetes**: the fake API server (``python -m tests.fakekube``) out of process in *process mode*: each
  pod's ``base`` container command - ``python -m airflow.sdk.execution_time.execute_workload --json-string
  <workload>`` - really runs, with the pod's env, as a local process (the image is ignored).  ``python``
  resolves to this venv's interpreter, the only executable allowed.  Nodes: the pools infra provisions,
  labelled and tainted as the shipped templates expect (``tests.engine.conftest.POOLS``).
* **Control plane** (``AIRFLOW_HOME=<tmp>/home``): ``airflow api-server`` (REST API and, under
  ``/execution/``, the Execution API), ``airflow dag-processor``, ``airflow triggerer`` (deferred tasks
  resume through it) and ``airflow scheduler`` with
  ``[core] executor = airflow_k8s.executor.airflow.KubernetesPlatformExecutor``, which reaches the fake
  through ``in_cluster = False`` + a kubeconfig.  The package is installed in this venv, so its cluster
  policy (the ``airflow.policy`` entry point) checks every DAG the dag-processor parses.
* **Workers**: task processes get ``AIRFLOW_HOME=<tmp>/worker-home``, whose airflow.cfg has *no* database URL:
  an Airflow 3 task needs only its DAG file and the Execution API (``AIRFLOW__CORE__EXECUTION_API_SERVER_URL``,
  which the executor puts into every pod).  ``E2E_SHARED_DIR`` (a directory both sides see) is how test DAGs
  leave marks and wait for the test.

Timers are shortened so a run takes seconds (scheduler heartbeats, orphan checks, DAG folder refresh); no
assertion depends on them - the test waits for states.  Every process is a :class:`~.processes.Service`
logging into the test's temp dir, stopped in teardown.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import urllib.request
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tests.airflow.e2e.postgres import start_postgres
from tests.airflow.e2e.processes import Service, Services, free_port, wait_until
from tests.airflow.e2e.rest import AirflowApi
from tests.conftest import ROOT, write_kubeconfig
from tests.engine.conftest import POOLS

NAMESPACE = "airflow"
EXECUTOR = "airflow_k8s.executor.airflow.KubernetesPlatformExecutor"
DAG_SOURCES = (ROOT / "examples" / "dags", Path(__file__).parent / "dags")
JWT_SECRET = "e2e-only-signing-secret-" + "x" * 40  # a throwaway test stack's signing key
STARTUP_TIMEOUT = 240.0  # seconds for a component to come up on a busy 2-core machine


def ini(sections: dict[str, dict[str, Any]]) -> str:
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {value}" for key, value in values.items())
        lines.append("")
    return "\n".join(lines)


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without Airflow settings (the adapter tests' AIRFLOW_HOME...) plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW") and k != "PYTEST_CURRENT_TEST"}
    env.update(extra)
    return env


@dataclass
class Fake:
    url: str
    service: Service

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=10) as response:  # noqa: S310 - http to loopback
            return json.loads(response.read())

    def post(self, path: str, body: Any) -> Any:
        request = urllib.request.Request(  # noqa: S310 - http to loopback
            self.url + path, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return json.loads(response.read() or b"null")

    def delete(self, path: str) -> None:
        request = urllib.request.Request(self.url + path, method="DELETE")  # noqa: S310 - http to loopback
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310
            pass

    def pods(self) -> list[dict[str, Any]]:
        """The pods in the task namespace now (finished ones stay: ``delete_worker_pods = False``)."""
        return list(self.get(f"/api/v1/namespaces/{NAMESPACE}/pods")["items"])

    def pod_log(self, name: str) -> str:
        """The log of a pod's ``base`` container (in process mode: what its process printed so far)."""
        url = f"{self.url}/api/v1/namespaces/{NAMESPACE}/pods/{name}/log"
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - http to loopback
            return str(response.read().decode(errors="replace"))

    def creates(self) -> dict[str, int]:
        """How often each pod name was created (the fake's record of every successful create)."""
        return {c["name"]: c["count"] for c in self.get("/_fake/stats")["creates"] if c["namespace"] == NAMESPACE}


@dataclass
class AirflowStack:
    root: Path
    services: Services
    api: AirflowApi
    fake: Fake
    home: Path
    worker_home: Path
    shared: Path
    env: dict[str, str]
    schedulers: list[Service] = field(default_factory=list)

    @property
    def scheduler(self) -> Service:
        return self.schedulers[-1]

    def start_scheduler(self, **env: str) -> Service:
        """One more ``airflow scheduler``; ``env`` adds settings of its own (``AIRFLOW__SECTION__KEY="value"``)."""
        name = f"scheduler-{len(self.schedulers) + 1}"
        argv = [sys.executable, "-m", "airflow", "scheduler"]
        service = self.services.start(name, argv, env={**self.env, **env}, cwd=self.home)
        self.schedulers.append(service)
        return service

    def live_schedulers(self) -> list[Service]:
        return [service for service in self.schedulers if service.alive()]

    def scheduler_job_id(self, service: Service, *, timeout: float = STARTUP_TIMEOUT) -> int:
        """The scheduler job id ``service``'s executor runs under (its pods' ``airflow-worker`` label), once started."""

        def started() -> int | None:
            found = re.search(
                r"KubernetesPlatformExecutor started for scheduler job (\d+)", service.log_path.read_text()
            )
            return int(found.group(1)) if found else None

        return int(self.wait(started, what=f"the executor of {service.name} to start", timeout=timeout))

    def kill_scheduler(self, service: Service) -> None:
        """SIGKILL ``service`` (no cleanup, its pods keep running); ``scheduler`` stays the newest live one."""
        assert service.kill() == -9
        self.schedulers.remove(service)
        self.schedulers.insert(0, service)

    def stop_scheduler(self, service: Service) -> None:
        """Stop ``service`` as Kubernetes stops a pod (SIGTERM, then wait); ``scheduler`` stays the newest live one."""
        service.stop()
        self.schedulers.remove(service)
        self.schedulers.insert(0, service)

    def restart_api_server(self, *, while_down: Any = None) -> Service:
        """Stop the api-server as Kubernetes stops a pod (SIGTERM, then wait), call ``while_down()``, start it again.

        The new process serves the same port with the same configuration (task pods keep their Execution API URL
        and their tokens, signed with the same secret); returns once it answers.
        """
        old = next(service for service in reversed(self.services.started) if service.name == "api-server")
        old.stop()
        if while_down is not None:
            while_down()
        new = self.services.start("api-server", old.argv, env=old.env, cwd=old.cwd)
        self.wait(self.api.reachable, what="the restarted API server to answer", timeout=STARTUP_TIMEOUT)
        return new

    def restart_scheduler(self, **env: str) -> Service:
        """Stop the newest live scheduler cleanly (SIGTERM: its pods keep running) and start one with ``env``."""
        self.stop_scheduler(self.scheduler)
        return self.start_scheduler(**env)

    def airflow(self, name: str, *args: str, timeout: float = 600) -> None:
        self.services.run(name, [sys.executable, "-m", "airflow", *args], timeout=timeout, env=self.env, cwd=self.home)

    def wait(self, condition: Any, *, what: str, timeout: float = 300, state: Any = None) -> Any:
        return wait_until(condition, timeout=timeout, what=what, services=self.services, state=state)

    def wait_for_dags(self, dag_ids: Iterable[str]) -> None:
        """Until the dag-processor has parsed each DAG (import errors are shown if it does not)."""
        missing = list(dag_ids)
        self.wait(
            lambda: not [d for d in missing if self.api.dag(d) is None],
            what=f"the dag-processor to serialise {missing}",
            state=self.api.import_errors,
            timeout=STARTUP_TIMEOUT,
        )
        for dag_id in missing:
            if self.api.dag(dag_id)["is_paused"]:  # type: ignore[index]
                self.api.unpause(dag_id)

    def wait_for_run(self, dag_id: str, run_id: str, *, timeout: float = 300) -> dict[str, Any]:
        """Until the DAG run is finished (success or failed); its final REST representation."""

        def finished() -> dict[str, Any] | None:
            run = self.api.dag_run(dag_id, run_id)
            return run if run["state"] in ("success", "failed") else None

        return self.wait(
            finished,
            what=f"{dag_id} run {run_id} to finish",
            timeout=timeout,
            state=lambda: {t: ti["state"] for t, ti in self.api.task_instances(dag_id, run_id).items()},
        )

    def report(self) -> str:
        return self.services.report()


LAYOUT = {"AIRFLOW_HOME": "/opt/airflow", "AIRFLOW_CONFIG": "/opt/airflow/airflow.cfg"}


def worker_templates(root: Path, worker_home: Path) -> Path:
    """The shipped templates with their layout env pointed at the workers' home here.

    Task pods pin ``AIRFLOW_HOME``/``AIRFLOW_CONFIG`` to where the platform mounts airflow.cfg
    (``/opt/airflow``); the fake runs each pod as a local process without mounts, so this stack's
    copy names ``worker_home`` instead - as the same mount at another path would.  Nothing else changes.
    """
    import yaml

    target = root / "pod_templates"
    if target.is_dir():
        return target
    target.mkdir()
    values = {"AIRFLOW_HOME": str(worker_home), "AIRFLOW_CONFIG": str(worker_home / "airflow.cfg")}
    for source in sorted((ROOT / "pod_templates").glob("*.yaml")):
        pod = yaml.safe_load(source.read_text())
        for container in pod["spec"]["containers"]:
            for item in container.get("env") or []:
                if item.get("value") == LAYOUT.get(item["name"]):
                    item["value"] = values[item["name"]]
        (target / source.name).write_text(yaml.safe_dump(pod, sort_keys=False))
    return target


def write_configs(root: Path, *, database_url: str, api_port: int, kubeconfig: Path) -> tuple[Path, Path, Path]:
    """The control plane's and the workers' AIRFLOW_HOME (with airflow.cfg), and the shared DAGs folder."""
    home, worker_home, dags, logs = root / "home", root / "worker-home", root / "dags", root / "task-logs"
    for directory in (home, worker_home, dags, logs):
        directory.mkdir(parents=True, exist_ok=True)
    for source in DAG_SOURCES:
        for dag_file in source.glob("*.py"):
            shutil.copy(dag_file, dags / dag_file.name)
    common_core = {"dags_folder": dags, "load_examples": "False", "default_timezone": "utc"}
    control = {
        "core": {
            **common_core,
            "executor": EXECUTOR,
            "dags_are_paused_at_creation": "False",
            "simple_auth_manager_all_admins": "True",
            "execution_api_server_url": f"http://127.0.0.1:{api_port}/execution/",
            "parallelism": "16",
        },
        "database": {"sql_alchemy_conn": database_url},
        "api": {"host": "127.0.0.1", "port": api_port, "base_url": f"http://127.0.0.1:{api_port}", "workers": 1},
        "api_auth": {"jwt_secret": JWT_SECRET},
        "logging": {
            "base_log_folder": logs,
            "colored_console_log": "False",
            "trigger_log_server_port": free_port(),  # the triggerer's log server: not the shared default 8794
        },
        "triggerer": {"job_heartbeat_sec": 1},
        "scheduler": {
            "use_job_schedule": "False",  # only the runs the test triggers
            "scheduler_heartbeat_sec": 1,
            "job_heartbeat_sec": 1,
            "scheduler_health_check_threshold": 10,  # a SIGKILLed scheduler is dead after 10 s...
            "orphaned_tasks_check_interval": 3,  # ...and its task instances offered for adoption soon after
            "task_instance_heartbeat_timeout": 600,
        },
        "dag_processor": {"refresh_interval": 2, "min_file_process_interval": 600, "parsing_processes": 1},
        "kubernetes_executor": {
            "namespace": NAMESPACE,
            "in_cluster": "False",
            "config_file": kubeconfig,
            "pod_template_dir": worker_templates(root, worker_home),
            "pod_template_file": worker_templates(root, worker_home) / "default_template.yaml",
            "worker_container_image": "apache/airflow:3.3.2",
            "delete_worker_pods": "False",  # finished pods stay, so the test can read their specs
            "metrics_port": free_port(),
            "kube_request_timeout": 10,
        },
    }
    worker = {"core": common_core, "logging": {"base_log_folder": logs, "colored_console_log": "False"}}
    (home / "airflow.cfg").write_text(ini(control))
    (worker_home / "airflow.cfg").write_text(ini(worker))
    return home, worker_home, dags


def start_fake(services: Services, root: Path, worker_env: dict[str, str]) -> Fake:
    pods_dir = root / "pods"
    pods_dir.mkdir(exist_ok=True)
    services.log_globs.append(pods_dir / "*" / "log")  # each task pod's output (while its pod exists)
    argv = [
        sys.executable, "-m", "tests.fakekube", "--port", "0", "--nodes-json", json.dumps([asdict(n) for n in POOLS]),
        "--process-mode", "--allow-exec", sys.executable, "--process-root", str(pods_dir),
        *[arg for key, value in worker_env.items() for arg in ("--env", f"{key}={value}")],
    ]  # fmt: skip
    service = services.start("fakekube", argv, env=clean_environment(PYTHONPATH=str(ROOT)), cwd=ROOT)

    def url() -> str | None:
        found = re.search(r"^FAKEKUBE_URL=(\S+)$", service.log_path.read_text(), re.MULTILINE)
        return found.group(1) if found else None

    return Fake(wait_until(url, timeout=60, what="the fake API server's URL", services=services), service)


def start_stack(root: Path, *, database: str = "postgresql", triggerer: bool = True) -> AirflowStack:
    """Everything above, started in order and waited for; stop it with ``stack.services.stop_all()``."""
    services = Services(root / "logs")
    try:
        return _start(root, services, database, triggerer)
    except BaseException:
        services.stop_all()
        raise


def _start(root: Path, services: Services, database: str, triggerer: bool = True) -> AirflowStack:
    url = start_postgres(services).url if database == "postgresql" else f"sqlite:///{root / 'airflow.db'}"
    shared = root / "shared"
    shared.mkdir()
    worker_home = root / "worker-home"
    venv_bin = str(Path(sys.executable).parent)
    services.stray_marker = f"E2E_SHARED_DIR={shared}"
    worker_env = {
        "AIRFLOW_HOME": str(worker_home),
        "HOME": str(worker_home),
        "PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "E2E_SHARED_DIR": str(shared),
    }
    fake = start_fake(services, root, worker_env)
    api_port = free_port()
    home, worker_home, _ = write_configs(
        root, database_url=url, api_port=api_port, kubeconfig=Path(write_kubeconfig(root / "kubeconfig", fake.url))
    )
    env = clean_environment(AIRFLOW_HOME=str(home), AIRFLOW_CONFIG=str(home / "airflow.cfg"), PYTHONUNBUFFERED="1")
    api = AirflowApi(f"http://127.0.0.1:{api_port}")
    stack = AirflowStack(root, services, api, fake, home, worker_home, shared, env)
    stack.airflow("db-migrate", "db", "migrate")
    services.start("api-server", [sys.executable, "-m", "airflow", "api-server"], env=env, cwd=home)
    services.start("dag-processor", [sys.executable, "-m", "airflow", "dag-processor"], env=env, cwd=home)
    if triggerer:
        services.start("triggerer", [sys.executable, "-m", "airflow", "triggerer"], env=env, cwd=home)
    stack.start_scheduler()
    stack.wait(stack.api.reachable, what="the API server to answer", timeout=STARTUP_TIMEOUT)
    return stack
