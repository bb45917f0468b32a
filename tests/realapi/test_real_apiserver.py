"""Opt-in: the scheduler against a real kube-apiserver 1.20 (``../shared/real-apiserver/``), for API behaviour.

    .venv/bin/python -m pytest -m realapi tests/realapi -s    # -s prints each run's figures

The platform's namespace, quota, LimitRange, ServiceAccounts, RBAC and PriorityClasses come from the infra
offline render (see :mod:`tests.realapi.platform` for what is applied and what is skipped); the scheduler runs as
a process authenticated only by its ServiceAccount's token, with the templates the render publishes; the real
kube-scheduler places the pods on Nodes built from the rendered NodePools (the DAGs claim bound to a volume), and a
stand-in kubelet runs what it binds (:mod:`tests.realapi.kubelet`).  What is checked is what the fake cannot prove
by itself: that the engine behaves right against the real quota admission and controller, real RBAC (and its
unsynced window after a restart), a real watch cache and its 410s, and the real scheduler's placement.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from airflow_k8s.executor.contract.errors import KubeApiError
from airflow_k8s.executor.kube.client import KubeClient
from airflow_k8s.executor.tasks import identity
from airflow_k8s.executor.tasks.results import FAILED, SUCCESS
from airflow_k8s.executor.tasks.spool import Spool
from airflow_k8s.executor.tasks.task import Task
from tests.engine.conftest import behave, make_task
from tests.realapi.conftest import Platform
from tests.realapi.kubelet import StandInKubelet
from tests.scheduler_process import log_events, metric, metrics_port, scrape, start_scheduler

pytestmark = pytest.mark.realapi


class Run:
    """One scheduler process (restartable) on the platform, fed through a spool."""

    def __init__(self, platform: Platform, name: str, *, templates: Path | None = None, **config: Any) -> None:
        self.platform = platform
        self.templates = templates or platform.templates_dir
        self.cfg = platform.write_config(**config)
        self.spool = Spool(platform.tmp / f"spool-{name}")
        self.log = platform.tmp / f"scheduler-{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.started = time.monotonic()

    def submit(self, tasks: list[Task]) -> None:
        for task in tasks:
            self.spool.submit(task)

    def start(self) -> None:
        self.process = start_scheduler(
            self.cfg, self.spool.root, self.log, kubeconfig=self.platform.scheduler_kubeconfig, templates=self.templates
        )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def results(self) -> int:
        return len(list(self.spool.results.glob("*.json")))

    def wait(self, predicate, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(
                    f"scheduler exited with {self.process.returncode}:\n{self.log.read_text()[-3000:]}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s; log tail:\n{self.log.read_text()[-2000:]}")
            time.sleep(0.1)

    def running(self) -> int:
        """Pods of this executor in phase Running."""
        pods = self.platform.admin.list_pods(self.platform.namespace).items
        return sum(
            p["status"].get("phase") == "Running" and identity.LABEL_EXECUTOR in (p["metadata"].get("labels") or {})
            for p in pods
        )

    def pods_left(self) -> list[str]:
        """Pods of this executor still in the namespace and not labelled done."""
        listing = self.platform.admin.list_pods(self.platform.namespace)
        labels = [(p["metadata"]["name"], p["metadata"].get("labels") or {}) for p in listing.items]
        return [
            name for name, lab in labels if identity.LABEL_EXECUTOR in lab and lab.get(identity.LABEL_DONE) != "True"
        ]

    def finish(self, tasks: int, timeout: float) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Wait for every result and the cleanup after it; scrape the metrics; stop with SIGTERM."""
        try:
            self.wait(lambda: self.results() >= tasks, timeout)
            self.wait(lambda: not self.pods_left() and not list(self.spool.incoming.glob("*.json")), 60)
            port = metrics_port(self.log)
            assert port is not None
            return scrape(port)
        finally:
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)
            assert self.process.wait(20) == 0, self.log.read_text()[-3000:]

    def forbidden_lines(self) -> list[str]:
        """Log lines that report a 403 other than the quota's."""
        lines = []
        for event in log_events(self.log):
            text = json.dumps(event).lower()
            if "forbidden" in text and "exceeded quota" not in text:
                lines.append(text[:300])
        return lines


def assert_exactly_once(run: Run, tasks: list[Task], kubelet: StandInKubelet) -> dict[str, int]:
    recorded = {r.key: r for r in run.spool.read_results()}
    lost = {t.key for t in tasks} - set(recorded)
    failed = [(r.key, r.reason, r.message) for r in recorded.values() if r.state != SUCCESS]
    creates = kubelet.creates()
    duplicated = {identity.pod_name(t.key): creates.get(identity.pod_name(t.key), 0) for t in tasks}
    duplicated = {name: n for name, n in duplicated.items() if n != 1}
    assert not lost, f"{len(lost)} task(s) lost"
    assert not failed, failed[:5]
    assert not duplicated, f"pods created other than once (seen by the stand-in kubelet): {duplicated}"
    return {"succeeded": len(recorded), "false_failures": 0, "lost": 0, "duplicated_pods": 0}


def tasks_named(prefix: str, count: int, seed: int) -> list[Task]:
    rng = random.Random(seed)
    return [
        make_task(f"{prefix}{i}", annotations=behave("succeed", run_seconds=round(rng.uniform(0.1, 0.6), 2)))
        for i in range(count)
    ]


# -- RBAC -----------------------------------------------------------------------------------------
SCHEDULER_NEEDS = [  # (verb, resource, subresource, namespaced): every call the scheduler makes
    ("create", "pods", "", True),
    ("get", "pods", "", True),
    ("list", "pods", "", True),
    ("watch", "pods", "", True),
    ("patch", "pods", "", True),
    ("delete", "pods", "", True),
    ("get", "pods", "log", True),
    ("list", "nodes", "", False),
]
SCHEDULER_MUST_NOT = [
    ("get", "secrets", "", True),
    ("create", "pods", "exec", True),
    ("update", "pods", "status", True),
]


def can_i(client: KubeClient, namespace: str, verb: str, resource: str, subresource: str, namespaced: bool) -> bool:
    attributes = {"verb": verb, "resource": resource, "subresource": subresource}
    if namespaced:
        attributes["namespace"] = namespace
    body = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": attributes},
    }
    answer = client.request("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", body=body)
    return bool(answer["status"].get("allowed"))


def test_the_rendered_scheduler_role_is_enough_and_nothing_the_scheduler_does_is_forbidden(platform, kubelet):
    platform.set_quota(platform.room_for(40))  # no quota pressure here: every 403 would be RBAC's
    run = Run(platform, "rbac")
    ok = tasks_named("ok", 10, seed=1)
    bad = [make_task(f"bad{i}", annotations=behave("fail", exit_code="3", run_seconds=0.2)) for i in range(2)]
    run.submit([*ok, *bad])
    run.start()
    samples = run.finish(len(ok) + len(bad), 180)

    results = {r.key: r for r in run.spool.read_results()}
    assert all(results[t.key].state == SUCCESS for t in ok)
    assert all((results[t.key].state, results[t.key].exit_code) == (FAILED, 3) for t in bad)
    kept = {p["metadata"]["name"]: p for p in platform.admin.list_pods(platform.namespace).items}
    assert all(kept[identity.pod_name(t.key)]["metadata"]["labels"][identity.LABEL_DONE] == "True" for t in bad)
    assert metric(samples, "airflow_executor_api_errors_total", code="403") == 0
    assert metric(samples, "airflow_executor_api_errors_total", code="401") == 0
    assert run.forbidden_lines() == []
    assert not any(e.get("msg", "").startswith("cannot list nodes") for e in log_events(run.log))
    # The same token, asked directly: every verb the scheduler uses is granted; secrets, exec and status are not.
    scheduler = KubeClient.from_settings(in_cluster=False, config_file=str(platform.scheduler_kubeconfig))
    try:
        denied = [need for need in SCHEDULER_NEEDS if not can_i(scheduler, platform.namespace, *need)]
        granted = [extra for extra in SCHEDULER_MUST_NOT if can_i(scheduler, platform.namespace, *extra)]
    finally:
        scheduler.close()
    assert denied == [] and granted == []
    applied = sorted(Counter(o["kind"] for o in platform.applied).items())
    print("rbac:", json.dumps({"applied": applied, "skipped": platform.skipped}))


# -- quota pressure -------------------------------------------------------------------------------
def quota_figures(samples) -> dict[str, float]:
    return {
        "quota_refusals": metric(samples, "airflow_executor_quota_refusals_total"),
        "api_403": metric(samples, "airflow_executor_api_errors_total", code="403"),
        "api_409": metric(samples, "airflow_executor_api_errors_total", code="409"),
    }


def test_a_run_under_quota_pressure_has_no_false_failures(platform, kubelet):
    """The quota holds half of what N_max wants: the real quota admission refuses creates while the quota
    controller has not yet given back the share of pods that ended.  Every task must still succeed once."""
    n_max = platform.config.worker_pods_max
    platform.set_quota(platform.room_for(n_max // 2))
    run = Run(platform, "pressure")
    tasks = tasks_named("p", 60, seed=2)
    run.submit(tasks)
    run.start()
    samples = run.finish(len(tasks), 300)
    figures = assert_exactly_once(run, tasks, kubelet) | quota_figures(samples)
    print("quota pressure:", json.dumps(figures | {"wall_s": round(time.monotonic() - run.started, 1)}))
    assert figures["quota_refusals"] >= 1  # there was pressure...
    assert figures["api_403"] == figures["quota_refusals"]  # ...and every 403 was the quota's, none RBAC's
    assert run.forbidden_lines() == []


def test_two_hundred_tasks_under_quota_pressure_with_a_kill_in_the_middle_all_succeed_exactly_once(platform, kubelet):
    n_max = platform.config.worker_pods_max
    platform.set_quota(platform.room_for(n_max // 2))
    run = Run(platform, "kill")
    tasks = tasks_named("k", 200, seed=3)
    run.submit(tasks)
    run.start()
    run.wait(lambda: run.results() >= 80 and run.running(), 300)  # killed with pods in flight
    run.kill()
    killed_at = run.results()
    in_flight = run.pods_left()  # pods the killed scheduler left behind, to be taken over
    run.start()
    samples = run.finish(len(tasks), 600)
    events = Counter(e.get("event") for e in log_events(run.log))
    figures = assert_exactly_once(run, tasks, kubelet) | quota_figures(samples)
    figures |= {"kills": 1, "results_at_kill": killed_at, "pods_at_kill": len(in_flight)}
    figures |= {"adopted_after_kill": events["adopted"]}
    print("quota pressure + SIGKILL:", json.dumps(figures | {"wall_s": round(time.monotonic() - run.started, 1)}))
    assert events["task_failed"] == 0
    # The successor took over the pods left at the kill: each task ran once, on the pod the killed one created
    # (logged "adopted" when the relist comes before the intake's read of the task, silently otherwise).
    assert in_flight
    creates = kubelet.creates()
    assert all(creates.get(name) == 1 for name in in_flight), {name: creates.get(name) for name in in_flight}


# -- 410 ------------------------------------------------------------------------------------------
def test_a_watch_resumed_after_an_apiserver_restart_gets_410_and_the_scheduler_relists_losing_nothing(
    platform, kubelet
):
    if not (platform.kas.started_here or os.environ.get("KAS_ALLOW_RESTART") == "1"):
        pytest.skip("restarts the kube-apiserver: only done to a server this session started (or KAS_ALLOW_RESTART=1)")
    platform.set_quota(platform.room_for(40))
    run = Run(platform, "gone")
    tasks = [make_task(f"g{i}", annotations=behave("succeed", run_seconds=1.5)) for i in range(24)]
    run.submit(tasks)
    run.start()
    run.wait(lambda: run.results() >= 4, 120)
    platform.kas.restart_apiserver()  # a rollout: its watch cache starts over from a fresh list
    samples = run.finish(len(tasks), 300)
    figures = assert_exactly_once(run, tasks, kubelet)
    expired = metric(samples, "airflow_executor_watch_restarts_total", cause="expired")
    print("410:", json.dumps(figures | {"watch_restarts_expired": expired, "stand_in_retries": kubelet.retries}))
    assert expired >= 1
    assert any(e.get("event") == "watch_expired" for e in log_events(run.log))


# -- RBAC's unsynced window after a restart ------------------------------------------------------
RESTARTS_FOR_THE_WINDOW = 3


def probe_rbac(platform: Platform, stop: threading.Event, seen: list[tuple[float, int]]) -> None:
    """Ask the server, with the scheduler's token, every 2 ms for one pod: (monotonic time, HTTP status; 0: none)."""
    client = KubeClient.from_settings(
        in_cluster=False, config_file=str(platform.scheduler_kubeconfig), request_timeout=2.0
    )
    try:
        while not stop.is_set():
            try:
                client.request("GET", f"/api/v1/namespaces/{platform.namespace}/pods", query=[("limit", 1)])
                status = 200
            except KubeApiError as exc:
                status = exc.status
            seen.append((time.monotonic(), status))
            stop.wait(0.002)
    finally:
        client.close()


def rbac_window(seen: list[tuple[float, int]]) -> tuple[int, float]:
    """403s the probe got once the restarted server answered, and from its first answer to the last 403 (s)."""
    down = next((i for i, (_, status) in enumerate(seen) if status == 0), None)
    if down is None:
        return 0, 0.0
    after = [(t, status) for t, status in seen[down:] if status != 0]
    denied = [t for t, status in after if status == 403]
    return len(denied), round(denied[-1] - after[0][0], 3) if denied else 0.0


def test_creates_refused_by_rbac_after_an_apiserver_restart_are_retried_and_no_task_fails(platform, kubelet):
    """The apiserver is restarted (up to three times, until the probe meets the unsynced authorizer's 403s) while
    the scheduler creates and deletes pods; every task must succeed exactly once and every pod be cleaned up."""
    if not (platform.kas.started_here or os.environ.get("KAS_ALLOW_RESTART") == "1"):
        pytest.skip("restarts the kube-apiserver: only done to a server this session started (or KAS_ALLOW_RESTART=1)")
    platform.set_quota(platform.room_for(40))
    run = Run(platform, "rbac-window", worker_pods_creation_qps=20.0)
    tasks = [make_task(f"w{i}", annotations=behave("succeed", run_seconds=0.2)) for i in range(150)]
    run.submit(tasks)
    run.start()
    run.wait(lambda: run.results() >= 5, 120)
    windows = []
    for _ in range(RESTARTS_FOR_THE_WINDOW):
        stop, seen = threading.Event(), []
        probe = threading.Thread(target=probe_rbac, args=(platform, stop, seen), daemon=True)
        probe.start()
        platform.kas.restart_apiserver()  # creates and deletes go on throughout
        deadline = time.monotonic() + 5.0  # record the first seconds the server answers again
        while time.monotonic() < deadline and not any(status == 200 for _, status in seen[-50:]):
            time.sleep(0.05)
        stop.set()
        probe.join(10)
        windows.append(rbac_window(seen))
        if windows[-1][0] or run.results() >= len(tasks) - 20:
            break
    samples = run.finish(len(tasks), 300)
    figures = assert_exactly_once(run, tasks, kubelet)
    figures |= {
        "restarts": len(windows),
        "probe_403s_and_window_s": windows,
        "scheduler_403s_retried": metric(samples, "airflow_executor_api_errors_total", code="403"),
    }
    print("rbac window after restart:", json.dumps(figures))


# -- the real kube-scheduler on the rendered NodePools -------------------------------------------
def pool_of(platform: Platform, selector: dict[str, str]) -> str:
    (name,) = [p.name for p in platform.pools() if all(p.labels.get(k) == v for k, v in selector.items())]
    return name


def test_every_tier_is_placed_by_kube_scheduler_on_the_node_of_its_rendered_nodepool(platform, kubelet):
    platform.set_quota(platform.room_for(40, "gpu"))
    run = Run(platform, "tiers")
    tiers = ("light", "medium", "heavy", "gpu")
    tasks = [make_task(f"tier-{t}", tier=t, annotations=behave("succeed", run_seconds=0.3)) for t in tiers]
    run.submit(tasks)
    run.start()
    run.finish(len(tasks), 180)
    assert_exactly_once(run, tasks, kubelet)
    expected = {}
    for tier in tiers:
        template = platform.config.tier(tier).pod_template or Path(platform.config.pod_template_file).name
        spec = (yaml.safe_load((platform.templates_dir / template).read_text()) or {}).get("spec") or {}
        expected[identity.pod_name(make_task(f"tier-{tier}").key)] = pool_of(platform, spec.get("nodeSelector") or {})
    assert {name: kubelet.nodes.get(name) for name in expected} == expected
    assert kubelet.binds == 0  # every binding was kube-scheduler's
    print("tiers:", json.dumps({"placed": expected, "pools": [p.name for p in platform.pools()]}))


def test_a_template_whose_toleration_misses_its_pools_taint_leaves_the_pod_unschedulable(platform, kubelet):
    templates = platform.tmp / "mismatched-templates"
    templates.mkdir()
    for path in platform.templates_dir.glob("*.yaml"):
        (templates / path.name).write_text(path.read_text())
    heavy = platform.config.tier("heavy").pod_template
    assert heavy is not None
    pod = yaml.safe_load((templates / heavy).read_text())
    for toleration in pod["spec"]["tolerations"]:
        toleration["value"] = f"{toleration.get('value')}-typo"  # the pool's taint is no longer tolerated
    (templates / heavy).write_text(yaml.safe_dump(pod))
    platform.set_quota(platform.room_for(8, "heavy"))
    run = Run(platform, "mismatch", templates=templates, max_pod_pending_timeout=20)
    task = make_task("mismatched", tier="heavy")
    run.submit([task])
    run.start()
    run.finish(1, 180)
    [result] = run.spool.read_results()
    assert (result.state, result.reason) == (FAILED, "PendingTimeout"), result
    assert "0/" in result.message and "taint" in result.message, result.message  # kube-scheduler's own reason
    assert kubelet.nodes == {}
