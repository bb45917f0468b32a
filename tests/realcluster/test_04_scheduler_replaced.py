"""The scheduler pod deleted mid-run: its Deployment starts a new one, which adopts the running task pods."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.realcluster.conftest import Deployed
from tests.realcluster.kit import wait_for

pytestmark = pytest.mark.realcluster

TASKS = {f"hold_{n}" for n in range(3)}


def live_pods(d: Deployed, component: str) -> list[dict]:
    return [p for p in d.pods(f"app.kubernetes.io/component={component}") if not p["metadata"].get("deletionTimestamp")]


def test_a_deleted_scheduler_pod_is_replaced_and_the_new_one_adopts_every_running_task_pod(deployed: Deployed):
    d = deployed
    d.api.wait_for_dags(["kc_hold"])
    run = d.api.trigger("kc_hold", "adoption-run")

    def all_running() -> dict | None:
        pods = d.recorder.task_pods("kc_hold", run)
        running = {task: p[-1] for (task, _), p in pods.items() if p[-1]["status"].get("phase") == "Running"}
        logs_started = all(
            "KC-START" in d.kit.kubectl("logs", p["metadata"]["name"], "-n", d.namespace, "-c", "base", check=False)
            for p in running.values()
        )
        return running if set(running) == TASKS and logs_started else None

    running = wait_for(all_running, what="every kc_hold task running in its pod", timeout=900)
    first_job = {p["metadata"]["labels"]["airflow-worker"] for p in running.values()}
    assert len(first_job) == 1
    (old,) = live_pods(d, "scheduler")
    d.kit.kubectl("delete", "pod", old["metadata"]["name"], "-n", d.namespace, "--wait=false")

    def replaced() -> dict | None:
        pods = [p for p in live_pods(d, "scheduler") if p["metadata"]["uid"] != old["metadata"]["uid"]]
        ready = [
            p
            for p in pods
            if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions") or [])
        ]
        return ready[0] if ready else None

    new = wait_for(replaced, what="a new scheduler pod Ready", timeout=1200, period=5)
    assert new["metadata"]["name"] != old["metadata"]["name"]

    def adopted() -> bool:
        pods = d.recorder.task_pods("kc_hold", run)
        labels = [p[-1]["metadata"]["labels"].get("airflow-worker") for p in pods.values()]
        return len(labels) == len(TASKS) and all(label not in first_job for label in labels)

    wait_for(adopted, what="the new scheduler to adopt the running task pods", timeout=1200, period=5)
    for pod in running.values():  # the same pods, never restarted, still running
        uid = pod["metadata"]["uid"]
        (now,) = [p for p in d.kit.items("pods", d.namespace) if p["metadata"]["uid"] == uid]
        assert now["status"]["phase"] == "Running", now["status"]
        assert all(s["restartCount"] == 0 for s in now["status"]["containerStatuses"])

    d.api.set_variable(f"kc_release_{run}", "go")
    assert d.api.wait_for_run("kc_hold", run)["state"] == "success"
    for task in sorted(TASKS):
        tries = d.api.tries("kc_hold", run, task)
        assert [(t["try_number"], t["state"]) for t in tries] == [(1, "success")], (task, tries)
    pods = d.recorder.task_pods("kc_hold", run)
    assert sorted(pods) == sorted((task, 1) for task in TASKS)  # no second try anywhere
    assert all(len(p) == 1 for p in pods.values()), {k: len(p) for k, p in pods.items()}  # one pod per task
    assert {d.recorder.creations(p[0]["metadata"]["name"]) for p in pods.values()} == {1}
    # each task's code ran once: one start line per pod
    starts = Counter()
    for (task, _), (pod,) in pods.items():
        text = d.kit.kubectl("logs", pod["metadata"]["name"], "-n", d.namespace, "-c", "base")
        starts[task] = text.count(f"KC-START {task} try=1")
    assert starts == Counter(dict.fromkeys(TASKS, 1))
    assert d.api.event_logs("kc_hold", "state mismatch") == []
