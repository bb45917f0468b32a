"""A node drain mid-run: one of two schedulers SIGKILLed and the api-server restarted while tasks run.

Two real Airflow 3.3.2 schedulers run against one database, each with this executor, ``[core] parallelism = 2``
(so the four held tasks of an ``e2e_hold`` run split 2 + 2: whichever queues first has no slot left) and
``worker_pods_min = 6``, more than the run's four tasks, so the namespace keeps placeholders while they run.

Before the drain, each scheduler runs, watches and counts only its own two pods, and the six placeholders exist
once, all the oldest scheduler's (the other never creates one), 6 - 4 of them while the tasks run.

The drain: the oldest scheduler is SIGKILLed and the api-server stopped as Kubernetes stops a pod (SIGTERM).  One
task of each scheduler is released while the api-server is down, so its final calls (XCom, success) meet a dead
server; the other two only heartbeat into it.  The api-server stays down until every task's log shows a call
retried a 5th time - more than Airflow's own ``[workers] execution_api_retries = 5`` allows (with Airflow's
defaults the tasks fail here) - and until the survivor has adopted the dead scheduler's pods (Airflow's orphan
adoption) and taken over the placeholders (the dead one's deleted, its own made).  Then it comes back on the same
port, and the run must end with every task once: one try, one pod created once, its code run once, no failure
reported by the executor.  Nothing waits a fixed time: the outage lasts as long as those conditions take.

The module replaces the stack's scheduler with the two and starts a plain one again afterwards.
"""

from __future__ import annotations

import re
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.airflow.e2e.conftest import database
from tests.airflow.e2e.hold import (
    DAG_ID,
    HOLDS,
    assert_every_task_ran_once_in_one_pod,
    pods_of,
    release,
    wait_until_holding,
)
from tests.airflow.e2e.processes import Service, free_port
from tests.airflow.e2e.stack import AirflowStack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

N_MIN = 6
RETRY_LOGGED = re.compile(r"this is the (\d+)(?:st|nd|rd|th) time calling it")  # the Task SDK's tenacity log


@dataclass
class Scheduler:
    service: Service
    job_id: int
    metrics_port: int

    def metric(self, name: str) -> float:
        """One unlabelled sample of the executor's Prometheus endpoint (in the scheduler process)."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:  # http to loopback
            text = response.read().decode()
        found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
        assert found, f"{name} not in {url}"
        return float(found.group(1))


def placeholders(stack: AirflowStack) -> Counter[int]:
    """Placeholder pods that exist (not being deleted), by the scheduler job that owns them."""
    owners: Counter[int] = Counter()
    for pod in stack.fake.pods():
        labels = pod["metadata"].get("labels") or {}
        if labels.get("airflow_executor_placeholder") == "True" and "deletionTimestamp" not in pod["metadata"]:
            owners[int(labels["airflow-worker"])] += 1
    return owners


def most_retries(log: str) -> int:
    """The highest attempt number the Task SDK's retry layer logged for any call."""
    return max((int(found.group(1)) for found in RETRY_LOGGED.finditer(log)), default=0)


@pytest.fixture(scope="module")
def pair(stack: AirflowStack) -> Iterator[tuple[Scheduler, Scheduler]]:
    """The stack's schedulers replaced by two HA ones (oldest first); a plain one started again afterwards."""
    if database() != "postgresql":
        pytest.skip("Airflow runs several schedulers only on a database with row-level locks (PostgreSQL here)")
    for service in stack.live_schedulers():
        stack.stop_scheduler(service)
    ports = [free_port(), free_port()]
    services = [
        stack.start_scheduler(
            AIRFLOW__CORE__PARALLELISM="2",
            AIRFLOW__KUBERNETES_EXECUTOR__WORKER_PODS_MIN=str(N_MIN),
            AIRFLOW__KUBERNETES_EXECUTOR__METRICS_PORT=str(port),
        )
        for port in ports
    ]
    started = sorted(
        (
            Scheduler(service, stack.scheduler_job_id(service), port)
            for service, port in zip(services, ports, strict=True)
        ),
        key=lambda scheduler: scheduler.job_id,
    )
    try:
        yield started[0], started[1]
    finally:
        for scheduler in started:
            if scheduler.service.alive():
                stack.stop_scheduler(scheduler.service)  # a clean stop deletes its placeholders
        stack.start_scheduler()  # the next tests wait for what they need of it
        stack.wait(lambda: not placeholders(stack), what="no placeholder left behind")


def test_a_node_drain_mid_run_loses_and_duplicates_nothing(stack: AirflowStack, pair: tuple[Scheduler, Scheduler]):
    oldest, survivor = pair
    stack.wait_for_dags([DAG_ID])
    stack.wait(
        lambda: (
            placeholders(stack) == {oldest.job_id: N_MIN}
            and (
                oldest.metric("airflow_executor_placeholder_keeper"),
                survivor.metric("airflow_executor_placeholder_keeper"),
            )
            == (1, 0)
        ),
        what=f"N_min = {N_MIN} placeholders, kept by the oldest scheduler only",
        state=lambda: placeholders(stack),
    )

    run_id = stack.api.trigger(DAG_ID, "drain-run")
    pods = wait_until_holding(stack, run_id)
    owner = {task: int(pods[task]["metadata"]["labels"]["airflow-worker"]) for task in HOLDS}
    assert Counter(owner.values()) == {oldest.job_id: 2, survivor.job_id: 2}  # active-active
    assert (oldest.metric("airflow_executor_pods_running"), survivor.metric("airflow_executor_pods_running")) == (2, 2)
    stack.wait(
        lambda: placeholders(stack) == {oldest.job_id: N_MIN - len(HOLDS)},
        what="the placeholders to make room for the namespace's four tasks",
        state=lambda: placeholders(stack),
    )
    assert not [name for name in stack.fake.creates() if name.startswith(f"{survivor.job_id}-placeholder-")]

    names = {task: pod["metadata"]["name"] for task, pod in pods.items()}
    released_early = [next(t for t in HOLDS if owner[t] == job) for job in (oldest.job_id, survivor.job_id)]
    retries: dict[str, int] = {}  # the most attempts of one call each task's log shows

    def drained_and_recovered() -> bool:
        phases = {task: pod["status"].get("phase") for task, pod in pods_of(stack, run_id).items()}
        failed = {task: stack.fake.pod_log(names[task])[-3000:] for task, phase in phases.items() if phase == "Failed"}
        assert not failed, failed
        adopted = all(
            pod["metadata"]["labels"]["airflow-worker"] == str(survivor.job_id)
            for task, pod in pods_of(stack, run_id).items()
            if task in HOLDS
        )
        return (
            adopted
            and placeholders(stack) == {survivor.job_id: N_MIN - len(HOLDS)}
            and survivor.metric("airflow_executor_placeholder_keeper") == 1
            and survivor.metric("airflow_executor_pods_running") == len(HOLDS)  # adopted ones count as its own
            and retried_beyond_airflows_default()
        )

    def retried_beyond_airflows_default() -> bool:
        retries.update({task: most_retries(stack.fake.pod_log(names[task])) for task in HOLDS})
        return all(attempts >= 5 for attempts in retries.values())

    def while_api_server_down() -> None:
        release(stack, run_id, *released_early)
        stack.wait(
            drained_and_recovered,
            what="calls retried past Airflow's default, the pods adopted, the placeholders taken over",
            timeout=300,
            state=lambda: (placeholders(stack), {t: most_retries(stack.fake.pod_log(n)) for t, n in names.items()}),
        )

    stack.kill_scheduler(oldest.service)  # the drain: its two tasks keep running in their pods
    drained = time.monotonic()
    stack.restart_api_server(while_down=while_api_server_down)
    outage = time.monotonic() - drained
    release(stack, run_id)
    assert stack.wait_for_run(DAG_ID, run_id)["state"] == "success"
    pods = assert_every_task_ran_once_in_one_pod(stack, run_id)
    stack.wait(
        lambda: placeholders(stack) == {survivor.job_id: N_MIN},
        what="the survivor to keep all N_min placeholders once the run is over",
        state=lambda: placeholders(stack),
    )
    creates = stack.fake.creates()
    print(  # the figures, for -s (nothing above depends on time)
        f"\nnode drain: {len(pods)} tasks, 1 of 2 schedulers SIGKILLed, api-server down {outage:.0f} s, "
        f"attempts of one Execution API call seen while down {min(retries.values())}-{max(retries.values())}, "
        f"task pod creates "
        f"{sum(creates[pod['metadata']['name']] for pod in pods.values())} for {len(pods)} pods, placeholder creates "
        f"{sum(n for name, n in creates.items() if '-placeholder-' in name)} (N_min {N_MIN}, kept by one scheduler, "
        "then by the survivor; P(t) moving recreates a few)"
    )
