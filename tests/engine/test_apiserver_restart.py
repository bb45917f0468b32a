"""An API server restart: the RBAC 403s of its unsynced authorizer are retried, not task failures.

For 0.1-0.6 s after a kube-apiserver (re)starts, requests with valid credentials get ``403 ...
cannot create resource "pods"``.  A create refused that way shortly after a disruption (a lost
connection, a 5xx, a watch restart) is retried with backoff while the disruption is recent
(``kube/disruption.py``, 30 s); without one, or after that, the 403 fails the task as before.
The fake's windows are made long here so the engine is certain to meet them, however loaded the
machine; the strict preset's 0.6 s and the real apiserver's window are in the real-apiserver tier.
"""

from __future__ import annotations

import time

from airflow_k8s.executor.tasks.results import FAILED, SUCCESS, MemorySink
from tests.engine.conftest import NAMESPACE, WAIT, make_task
from tests.fakekube.cluster import wait_for
from tests.fakekube.restart import USER

RBAC_MESSAGE = (
    f'pods is forbidden: User "{USER}" cannot create resource "pods" in API group "" in the namespace "{NAMESPACE}"'
)


def test_creates_refused_by_rbac_right_after_an_apiserver_restart_are_retried_and_run(cluster, make_engine):
    cluster.configure(rbac_sync_delay=15.0)
    sink = MemorySink()
    engine = make_engine(sink=sink)
    assert engine.synced.wait(WAIT)
    cluster.restart(downtime=0.5)
    # A 403 counts as the restart's only once the engine saw the restart (its watch cut, a connection lost).
    wait_for(engine.kube.disruptions.recent, WAIT, message="the engine never noticed the restart")
    tasks = [make_task(f"after-restart-{i}") for i in range(5)]
    for task in tasks:
        engine.submit(task)
    assert engine.wait_idle(WAIT)
    assert {sink.results[t.key].state for t in tasks} == {SUCCESS}, [sink.results[t.key] for t in tasks]
    assert cluster.stats.count("POST", "pods", 403) >= 1, "no create met the RBAC window: the test proved nothing"
    assert engine.snapshot()["failed"] == 0


def test_an_rbac_403_with_no_disruption_before_it_fails_the_task_at_once(cluster, make_engine):
    cluster.faults.add(method="POST", path=r"/pods$", status=403, message=RBAC_MESSAGE, times=None)
    sink = MemorySink()
    engine = make_engine(sink=sink)
    task = make_task("denied")
    engine.submit(task)
    wait_for(lambda: task.key in sink.results, WAIT, message="the task never failed")
    result = sink.results[task.key]
    assert (result.state, result.reason) == (FAILED, "Forbidden") and "cannot create resource" in result.message
    assert cluster.stats.count("POST", "pods", 403) == 1  # not retried


def test_rbac_403s_that_outlast_the_disruption_window_fail_the_task(cluster, make_engine):
    cluster.configure(rbac_sync_delay=3600.0)  # the Role really is gone: no sync will ever allow it
    sink = MemorySink()
    engine = make_engine(sink=sink)
    assert engine.synced.wait(WAIT)
    # The disruption's age is the test's to decide, not the machine's speed: its clock stands still
    # until two refusals were retried, then jumps past the window (later disruptions, such as a watch
    # restart, count from then on as usual).
    disruptions = engine.kube.disruptions
    disruptions.window = 2.0
    standing = time.monotonic()
    jump = [None]
    disruptions.clock = lambda: standing if jump[0] is None else time.monotonic() + jump[0]
    cluster.restart()
    wait_for(disruptions.recent, WAIT, message="the engine never noticed the restart")
    task = make_task("never-allowed")
    engine.submit(task)
    wait_for(lambda: cluster.stats.count("POST", "pods", 403) >= 2, WAIT, message="the 403s were not retried")
    assert task.key not in sink.results  # still retrying while the disruption is recent
    jump[0] = 10 * disruptions.window
    wait_for(lambda: task.key in sink.results, WAIT, message="the task was retried for ever")
    result = sink.results[task.key]
    assert (result.state, result.reason) == (FAILED, "Forbidden"), result
    assert cluster.stats.count("POST", "pods", 403) >= 2  # retried while the disruption was recent
