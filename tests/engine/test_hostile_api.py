"""The engine against a broken or hostile API server: no hang, no unbounded memory, clear errors, no task lost.

The hostile server (``tests/hostile``) sits in front of the strict fake and misbehaves only where a
test says; everything else is the fake's.  Outcomes are asserted, never elapsed times: a thread
still blocked, a task never finished or a traceback in the log fails the test.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from airflow_k8s.executor.contract.config_render import render_config
from airflow_k8s.executor.engine.core import Engine
from airflow_k8s.executor.kube.client import KubeClient
from airflow_k8s.executor.tasks.results import FAILED, SUCCESS, MemorySink
from airflow_k8s.executor.tasks.spool import Spool
from tests.engine.conftest import FAST, WAIT, make_config, make_task
from tests.fakekube.cluster import wait_for
from tests.hostile.server import HostileServer, answer, drip, hang, huge
from tests.scheduler_process import log_events, start_scheduler

MIB = 1 << 20
ENGINE_THREADS = ("pod-watcher", "pod-launcher-", "engine-loop", "pod-aux")


@pytest.fixture
def hostile(cluster) -> Iterator[HostileServer]:
    with HostileServer(upstream=cluster.url) as server:
        yield server


@pytest.fixture
def hostile_engine(hostile, templates) -> Iterator[Callable[..., Engine]]:
    """``hostile_engine(config, sink=...)``: a started engine whose client talks to the hostile server."""
    engines: list[Engine] = []
    clients: list[KubeClient] = []

    def make(config=None, *, sink=None, request_timeout: float = 5.0, max_mib: int = 1) -> Engine:
        client = KubeClient.for_host(hostile.url, request_timeout=request_timeout, max_response_bytes=max_mib * MIB)
        clients.append(client)
        engine = Engine(config or make_config(), templates, client, sink=sink or MemorySink(), options=FAST)
        engines.append(engine)
        engine.start()
        return engine

    yield make
    for engine in engines:
        engine.stop(timeout=5)
    for client in clients:
        client.close()


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it does not end in time: a test never leaves a scheduler behind."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(WAIT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(WAIT)


def tracebacks(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.exc_info is not None]


def test_a_201_with_a_garbage_body_is_retried_and_the_task_runs_once(hostile, hostile_engine, cluster, caplog):
    caplog.set_level(logging.INFO)
    hostile.add(answer(201, b"<<not json>>"), method="POST", path="/pods$", times=1)
    # The fake stores nothing for the garbage answer: it is the hostile server's; the retried create is the fake's.
    sink = MemorySink()
    engine = hostile_engine(sink=sink)
    task = make_task("garbled")
    engine.submit(task)
    assert engine.wait_idle(WAIT)
    assert sink.results[task.key].state == SUCCESS
    lines = [r.getMessage() for r in caplog.records if "not valid JSON" in r.getMessage()]
    assert len(lines) == 1 and hostile.url in lines[0] and "POST" in lines[0], lines
    assert tracebacks(caplog) == []


@pytest.mark.parametrize(
    "behaviour",
    [
        answer(200, b"<html><body>Service Unavailable</body></html>", content_type="text/html"),
        answer(200, b'["a", "list"]'),
        answer(200, b'{"items": [{"metadata'),
        huge(1024 * MIB),
    ],
    ids=["html", "array", "garbage", "1GiB"],
)
def test_a_bad_first_pod_list_is_logged_and_retried_until_the_engine_syncs(hostile, hostile_engine, caplog, behaviour):
    # the watcher's lists (not its watches, nor the node-capacity list of the pods it did not create)
    hostile.add(behaviour, method="GET", path="/pods$", query="^(?!.*(watch|labelSelector=(%21|!)))", times=2)
    sink = MemorySink()
    engine = hostile_engine(sink=sink)
    assert engine.synced.wait(WAIT), "the watcher never synced after the bad lists"
    task = make_task("after")
    engine.submit(task)
    assert engine.wait_idle(WAIT)
    assert sink.results[task.key].state == SUCCESS
    warnings = [r.getMessage() for r in caplog.records if r.name.endswith("watcher") and r.levelno >= logging.WARNING]
    assert len(warnings) == 2 and all(hostile.url in w for w in warnings), warnings
    assert tracebacks(caplog) == []
    assert hostile.hostile_bytes < 256 * MIB  # the 1 GiB answer was cut after about the cap


def test_a_create_that_drips_fails_the_task_at_the_creation_timeout(hostile, hostile_engine):
    hostile.add(drip(0.2, status=201), method="POST", path="/pods$")
    sink = MemorySink()
    engine = hostile_engine(make_config(pod_creation_timeout=4), sink=sink, request_timeout=1.0)
    task = make_task("dripped")
    engine.submit(task)
    wait_for(lambda: task.key in sink.results, WAIT, message="the task never failed")
    result = sink.results[task.key]
    assert (result.state, result.reason) == (FAILED, "CreationTimeout") and "deadline" in result.message


def test_stopping_the_engine_ends_every_thread_while_creates_hang(hostile, hostile_engine):
    hostile.add(hang(), method="POST", path="/pods$")
    engine = hostile_engine(request_timeout=600.0)  # no deadline would end these calls soon
    assert engine.synced.wait(WAIT)
    for i in range(4):
        engine.submit(make_task(f"hung{i}"))
    wait_for(lambda: len(hostile.seen("POST", "/pods$")) == 4, WAIT, message="the creates never reached the server")
    engine.stop(timeout=5)
    alive = [t.name for t in threading.enumerate() if t.name.startswith(ENGINE_THREADS)]
    assert alive == [], f"threads still blocked after stop(): {alive}"
    assert engine.snapshot()["failed"] == 0  # cut creates are not task failures


def test_sigint_stops_a_scheduler_whose_creates_hang_and_the_tasks_stay_queued(hostile, cluster, tmp_path: Path):
    cfg = tmp_path / "airflow.cfg"
    cfg.write_text(render_config(make_config(kube_request_timeout=600, pod_creation_timeout=3600)))
    spool = Spool(tmp_path / "spool")
    tasks = [make_task(f"stuck{i}") for i in range(8)]  # every creation worker blocked in a create
    for task in tasks:
        spool.submit(task)
    log = tmp_path / "scheduler.log"
    hostile.add(hang(), method="POST", path="/pods$")
    process = start_scheduler(cfg, spool.root, log, api_url=hostile.url)
    try:
        wait_for(lambda: len(hostile.seen("POST", "/pods$")) == 8, WAIT, message="the creates never reached the server")
        process.send_signal(signal.SIGINT)
        # The stated bound is Engine.stop's 5 s plus the status server's stop; 30 s is for a loaded machine.
        assert process.wait(30) == 0, log.read_text()[-3000:]
    finally:
        stop_process(process)
    assert "Traceback" not in log.read_text()
    assert [r.key for r in spool.read_results()] == [] and len(list(spool.incoming.glob("*.json"))) == 8
    # The next scheduler, on a server that answers, runs them.
    hostile.clear()
    process = start_scheduler(cfg, spool.root, log, api_url=hostile.url)
    try:
        done = lambda: [r.state for r in spool.read_results()] == [SUCCESS] * 8  # noqa: E731
        wait_for(done, WAIT, message="a task was lost")
    finally:
        stop_process(process)
    assert sum(e.get("event") == "started" for e in log_events(log)) == 2
