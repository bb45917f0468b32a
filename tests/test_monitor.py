"""PodMonitor over real HTTP against the fake Kubernetes API server (tests/fakekube).

Two kinds of pods are used: *simulated* pods (default scheduler) that the fake's kubelet runs through their life, and
*manual* pods (another schedulerName, which the simulation leaves alone) whose status the tests write through the
``pods/{name}/status`` subresource, to get timestamps hours in the past.
"""

from __future__ import annotations

import logging
import math
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from airflow_k8s.executor.contract.errors import KubeApiError
from airflow_k8s.executor.kube.client import KubeClient
from airflow_k8s.executor.reports.monitor import CleanupReport, MonitorError, PodMonitor, PodSummary
from airflow_k8s.executor.tasks import identity
from airflow_k8s.executor.tasks.key import TaskKey
from tests.fakekube.server import FakeKubeServer

NS = "airflow"
MANUAL = "manual-test-scheduler"  # pods with this schedulerName are not touched by the fake's simulation
_MERGE_PATCH = {"Accept": "application/json", "Content-Type": "application/merge-patch+json"}


@pytest.fixture
def monitor(kube: KubeClient) -> PodMonitor:
    return PodMonitor(kube, NS)


def key(task_id: str, dag_id: str = "etl") -> TaskKey:
    return TaskKey(dag_id=dag_id, task_id=task_id, run_id="scheduled__2024-06-01T00:00:00+00:00")


def manifest(
    task_id: str,
    *,
    tier: str = "light",
    manual: bool = True,
    annotations: dict[str, str] | None = None,
    placeholder: bool = False,
    foreign: bool = False,
) -> dict[str, Any]:
    task_key = key(task_id)
    if foreign:
        labels = {"app": "something-else"}
    elif placeholder:
        labels = {**identity.placeholder_labels("default"), identity.LABEL_TIER: tier}
    else:
        labels = {**identity.task_labels(task_key, "default"), identity.LABEL_TIER: tier}
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [
            {
                "name": "base",
                "image": "apache/airflow:2.8.0",
                "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}},
            }
        ],
    }
    if manual:
        spec["schedulerName"] = MANUAL
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{task_id}-pod" if (placeholder or foreign) else identity.pod_name(task_key),
            "labels": labels,
            "annotations": {**identity.task_annotations(task_key), **(annotations or {})},
        },
        "spec": spec,
    }


def stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def create(kube: KubeClient, task_id: str, **kwargs: Any) -> str:
    return str(kube.create_pod(NS, manifest(task_id, **kwargs))["metadata"]["name"])


def set_status(kube: KubeClient, name: str, status: dict[str, Any]) -> None:
    """Write the pod's status as a kubelet would (merge patch on the status subresource)."""
    kube.request("PATCH", f"/api/v1/namespaces/{NS}/pods/{name}/status", body={"status": status}, headers=_MERGE_PATCH)


def terminated(kube: KubeClient, name: str, *, started: datetime, finished: datetime, phase: str = "Succeeded") -> None:
    code = 0 if phase == "Succeeded" else 1
    state = {"exitCode": code, "reason": "Completed" if code == 0 else "Error"}
    set_status(
        kube,
        name,
        {
            "phase": phase,
            "startTime": stamp(started),
            "containerStatuses": [
                {
                    "name": "base",
                    "state": {"terminated": {**state, "startedAt": stamp(started), "finishedAt": stamp(finished)}},
                }
            ],
        },
    )


def finished_pod(kube: KubeClient, task_id: str, *, ago: timedelta, now: datetime, phase: str = "Succeeded") -> str:
    name = create(kube, task_id)
    terminated(kube, name, started=now - ago - timedelta(minutes=10), finished=now - ago, phase=phase)
    return name


def running_pod(kube: KubeClient, task_id: str, *, since: datetime) -> str:
    name = create(kube, task_id)
    set_status(
        kube,
        name,
        {
            "phase": "Running",
            "startTime": stamp(since),
            "containerStatuses": [{"name": "base", "state": {"running": {"startedAt": stamp(since)}}}],
        },
    )
    return name


def names_on_server(kube: KubeClient) -> set[str]:
    return {p["metadata"]["name"] for p in kube.list_pods(NS).items}


# -- listing ---------------------------------------------------------------------------------------
def test_listing_follows_every_page_and_returns_only_executor_task_pods(
    fake_kube: FakeKubeServer,
    kube: KubeClient,
) -> None:
    tasks = {create(kube, f"task{i}") for i in range(7)}
    create(kube, "balloon", placeholder=True)
    create(kube, "other", foreign=True)
    before = fake_kube.stats.count("GET", "pods")
    pods = PodMonitor(kube, NS, page_size=3).list_worker_pods()
    assert {p["metadata"]["name"] for p in pods} == tasks
    assert fake_kube.stats.count("GET", "pods") - before == 3  # 3 + 3 + 2 (placeholder filtered client-side)


def test_placeholders_are_listed_only_when_asked_for(kube: KubeClient, monitor: PodMonitor) -> None:
    create(kube, "task")
    balloon = create(kube, "balloon", placeholder=True)
    assert balloon not in {p["metadata"]["name"] for p in monitor.list_worker_pods()}
    assert balloon in {p["metadata"]["name"] for p in monitor.list_worker_pods(include_placeholders=True)}


def test_a_custom_label_selector_restricts_the_pods(kube: KubeClient) -> None:
    create(kube, "mine")
    create(kube, "theirs", foreign=True)
    only_foreign = PodMonitor(kube, NS, label_selector="app=something-else")
    assert [p["metadata"]["name"] for p in only_foreign.list_worker_pods()] == ["theirs-pod"]


def test_the_monitor_works_from_a_kubeconfig_not_only_in_cluster(fake_kube: FakeKubeServer, tmp_path) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(
        f"""\
apiVersion: v1
kind: Config
clusters: [{{name: fake, cluster: {{server: "{fake_kube.url}"}}}}]
users: [{{name: dev, user: {{token: not-checked}}}}]
contexts: [{{name: fake, context: {{cluster: fake, user: dev, namespace: {NS}}}}}]
current-context: fake
"""
    )
    client = KubeClient.from_settings(in_cluster=False, config_file=str(config), context="fake")
    try:
        create(client, "from-laptop")
        assert PodMonitor(client, NS).get_pod_metrics()["total"] == 1
    finally:
        client.close()


# -- status ----------------------------------------------------------------------------------------
def test_status_of_a_simulated_failed_pod_has_aware_times_node_tier_key_and_exit_code(
    fake_kube: FakeKubeServer,
    kube: KubeClient,
    monitor: PodMonitor,
) -> None:
    name = create(
        kube, "boom", tier="heavy", manual=False, annotations={"fakekube/outcome": "fail", "fakekube/exit-code": "3"}
    )
    fake_kube.cluster.wait_for_phase(NS, name, "Failed")
    summary = monitor.get_pod_status(name)
    assert isinstance(summary, PodSummary)
    assert (summary.name, summary.phase, summary.exit_code, summary.tier) == (name, "Failed", 3, "heavy")
    assert summary.task_key == str(key("boom"))
    assert summary.node_name
    assert summary.start_time is not None and summary.start_time.utcoffset() == timedelta(0)
    assert summary.finished_at is not None and summary.finished_at >= summary.start_time
    assert summary.reason == "Error"
    assert not summary.placeholder


def test_status_of_a_pending_pod_has_no_start_or_finish(kube: KubeClient, monitor: PodMonitor) -> None:
    name = create(kube, "waiting")
    summary = monitor.get_pod_status(name)
    assert (summary.phase, summary.start_time, summary.finished_at, summary.node_name) == ("Pending", None, None, None)


def test_status_of_a_missing_pod_is_a_404_api_error(monitor: PodMonitor) -> None:
    with pytest.raises(KubeApiError) as info:
        monitor.get_pod_status("no-such-pod")
    assert info.value.status == 404


# -- metrics ---------------------------------------------------------------------------------------
def test_pod_counts_cover_every_phase_including_unknown(
    fake_kube: FakeKubeServer,
    kube: KubeClient,
    monitor: PodMonitor,
) -> None:
    ok = create(kube, "ok", manual=False)
    bad = create(kube, "bad", manual=False, annotations={"fakekube/outcome": "fail"})
    busy = create(kube, "busy", manual=False, annotations={"fakekube/outcome": "hang"})
    create(kube, "queued")  # never scheduled: Pending
    lost = create(kube, "lost")
    set_status(kube, lost, {"phase": "Unknown", "reason": "NodeLost"})
    create(kube, "balloon", placeholder=True)
    for name, phase in ((ok, "Succeeded"), (bad, "Failed"), (busy, "Running")):
        fake_kube.cluster.wait_for_phase(NS, name, phase)
    assert monitor.get_pod_metrics() == {
        "total": 5,
        "pending": 1,
        "running": 1,
        "succeeded": 1,
        "failed": 1,
        "unknown": 1,
    }
    assert monitor.get_pod_metrics(include_placeholders=True)["total"] == 6


def test_pod_counts_of_an_empty_namespace_are_all_zero(monitor: PodMonitor) -> None:
    assert monitor.get_pod_metrics() == dict.fromkeys(
        ("total", "pending", "running", "succeeded", "failed", "unknown"), 0
    )


# -- cleanup ---------------------------------------------------------------------------------------
def test_cleanup_deletes_only_terminal_pods_that_finished_before_the_cutoff(
    kube: KubeClient, monitor: PodMonitor
) -> None:
    now = datetime.now(UTC)
    old_ok = finished_pod(kube, "old-ok", ago=timedelta(hours=13), now=now)
    old_failed = finished_pod(kube, "old-failed", ago=timedelta(hours=25), now=now, phase="Failed")
    recent = finished_pod(kube, "recent", ago=timedelta(hours=1), now=now)
    long_running = running_pod(kube, "long-running", since=now - timedelta(hours=48))
    queued = create(kube, "queued")
    balloon = create(kube, "balloon", placeholder=True)
    foreign = create(kube, "other", foreign=True)

    report = monitor.cleanup_old_pods(12, now=now)

    assert isinstance(report, CleanupReport)
    assert set(report.deleted) == {old_ok, old_failed}
    assert set(report.kept) == {recent, long_running, queued}
    assert report.errors == {} and report.already_gone == () and report.ok
    assert report.cutoff == now - timedelta(hours=12)
    assert names_on_server(kube) == {recent, long_running, queued, balloon, foreign}


def test_age_is_measured_from_when_the_pod_finished_not_when_it_started(kube: KubeClient, monitor: PodMonitor) -> None:
    now = datetime.now(UTC)
    name = create(kube, "thirty-hour-job")
    terminated(kube, name, started=now - timedelta(hours=30), finished=now - timedelta(minutes=5))
    assert monitor.cleanup_old_pods(12, now=now).kept == (name,)
    assert name in names_on_server(kube)


def test_the_latest_container_finish_counts_for_multi_container_pods(kube: KubeClient, monitor: PodMonitor) -> None:
    now = datetime.now(UTC)
    name = create(kube, "sidecar")
    early, late = now - timedelta(hours=20), now - timedelta(hours=2)
    set_status(
        kube,
        name,
        {
            "phase": "Succeeded",
            "containerStatuses": [
                {"name": "base", "state": {"terminated": {"exitCode": 0, "finishedAt": stamp(early)}}},
                {"name": "logs", "state": {"terminated": {"exitCode": 0, "finishedAt": stamp(late)}}},
            ],
        },
    )
    assert monitor.cleanup_old_pods(12, now=now).kept == (name,)
    assert monitor.cleanup_old_pods(1, now=now).deleted == (name,)


def test_without_container_finish_times_the_start_time_then_the_creation_time_is_used(
    kube: KubeClient, monitor: PodMonitor
) -> None:
    now = datetime.now(UTC)
    rejected = create(kube, "rejected")  # e.g. kubelet admission failure: Failed with no container statuses
    set_status(kube, rejected, {"phase": "Failed", "reason": "OutOfcpu", "startTime": stamp(now - timedelta(hours=30))})
    bare = create(kube, "bare")
    set_status(kube, bare, {"phase": "Failed", "reason": "Evicted"})
    report = monitor.cleanup_old_pods(12, now=now)
    assert report.deleted == (rejected,)
    assert report.kept == (bare,)  # created moments ago
    later = monitor.cleanup_old_pods(12, now=now + timedelta(hours=13))
    assert later.deleted == (bare,)


@pytest.mark.parametrize(
    ("tz", "offset_hours"),
    [("XST8", -8), ("XST-8", 8)],  # POSIX TZ strings: UTC-8 and UTC+8, no tzdata needed
)
def test_cleanup_is_timezone_correct_whatever_the_local_timezone(
    kube: KubeClient, monitor: PodMonitor, monkeypatch: pytest.MonkeyPatch, tz: str, offset_hours: int
) -> None:
    monkeypatch.setenv("TZ", tz)
    time.tzset()
    try:
        assert -time.timezone == offset_hours * 3600  # the process really runs in that zone now
        now = datetime.now(UTC)
        young = finished_pod(kube, "young", ago=timedelta(hours=11, minutes=59), now=now)
        old = finished_pod(kube, "old", ago=timedelta(hours=12, minutes=1), now=now)
        report = monitor.cleanup_old_pods(12)  # now=None: the real current time
        assert report.deleted == (old,)
        assert report.kept == (young,)
        assert names_on_server(kube) == {young}
    finally:
        monkeypatch.undo()
        time.tzset()


def test_an_aware_now_in_another_timezone_is_the_same_instant(kube: KubeClient, monitor: PodMonitor) -> None:
    now = datetime.now(UTC)
    young = finished_pod(kube, "young", ago=timedelta(hours=11, minutes=59), now=now)
    pacific = now.astimezone(timezone(timedelta(hours=-8)))
    assert monitor.cleanup_old_pods(12, now=pacific).kept == (young,)


def test_a_naive_now_is_rejected_and_nothing_is_deleted(kube: KubeClient, monitor: PodMonitor) -> None:
    now = datetime.now(UTC)
    old = finished_pod(kube, "old", ago=timedelta(hours=30), now=now)
    with pytest.raises(MonitorError, match="no timezone"):
        monitor.cleanup_old_pods(12, now=datetime.now())
    with pytest.raises(ValueError, match="no timezone"):
        monitor.cleanup_old_pods(12, now=now.replace(tzinfo=None))
    assert old in names_on_server(kube)


@pytest.mark.parametrize("bad", [-1, -0.5, math.nan, math.inf, True, "12"])
def test_max_age_must_be_a_finite_number_of_hours_from_zero(monitor: PodMonitor, bad: Any) -> None:
    with pytest.raises(MonitorError, match="max_age_hours"):
        monitor.cleanup_old_pods(bad)


def test_a_dry_run_reports_what_it_would_delete_and_deletes_nothing(
    fake_kube: FakeKubeServer,
    kube: KubeClient,
    monitor: PodMonitor,
) -> None:
    now = datetime.now(UTC)
    old = finished_pod(kube, "old", ago=timedelta(hours=30), now=now)
    recent = finished_pod(kube, "recent", ago=timedelta(hours=1), now=now)
    report = monitor.cleanup_old_pods(12, now=now, dry_run=True)
    assert report.dry_run
    assert report.deleted == (old,)
    assert report.kept == (recent,)
    assert names_on_server(kube) == {old, recent}
    assert fake_kube.stats.count("DELETE") == 0


def test_a_pod_that_is_already_gone_when_deleted_is_not_an_error(
    fake_kube: FakeKubeServer,
    kube: KubeClient,
    monitor: PodMonitor,
) -> None:
    now = datetime.now(UTC)
    vanishing = finished_pod(kube, "vanishing", ago=timedelta(hours=30), now=now)
    other = finished_pod(kube, "other", ago=timedelta(hours=30), now=now)
    fake_kube.faults.fail_next("DELETE", path=f"/pods/{vanishing}$", status=404)
    report = monitor.cleanup_old_pods(12, now=now)
    assert report.already_gone == (vanishing,)
    assert report.deleted == (other,)
    assert report.errors == {} and report.ok


def test_a_server_error_during_delete_is_collected_logged_and_the_sweep_continues(
    fake_kube: FakeKubeServer,
    kube: KubeClient,
    monitor: PodMonitor,
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = datetime.now(UTC)
    stuck = finished_pod(kube, "stuck", ago=timedelta(hours=30), now=now)
    other = finished_pod(kube, "other", ago=timedelta(hours=30), now=now)
    fake_kube.faults.fail_next("DELETE", path=f"/pods/{stuck}$", status=500)
    with caplog.at_level(logging.ERROR, logger="airflow_k8s.executor.reports.monitor"):
        report = monitor.cleanup_old_pods(12, now=now)
    assert report.deleted == (other,)
    assert list(report.errors) == [stuck]
    assert "500" in report.errors[stuck]
    assert not report.ok
    assert any(stuck in record.getMessage() for record in caplog.records if record.levelno == logging.ERROR)
    assert names_on_server(kube) == {stuck}


def test_a_simulated_pod_that_ran_to_completion_just_now_is_kept(
    fake_kube: FakeKubeServer,
    kube: KubeClient,
    monitor: PodMonitor,
) -> None:
    name = create(kube, "quick", manual=False)
    fake_kube.cluster.wait_for_phase(NS, name, "Succeeded")
    assert monitor.cleanup_old_pods(0.5).kept == (name,)
    assert monitor.cleanup_old_pods(1, now=datetime.now(UTC) + timedelta(hours=2)).deleted == (name,)
