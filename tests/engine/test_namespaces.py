"""multi_namespace_mode: task pods in the namespaces the rules allow, each namespace watched."""

from __future__ import annotations

from airflow_k8s.executor.tasks import identity
from airflow_k8s.executor.tasks.results import SUCCESS, MemorySink
from tests.engine.conftest import NAMESPACE, WAIT, behave, make_config, make_task

TEAM = "team-b"


def multi(**changes):
    return make_config(multi_namespace_mode=True, multi_namespace_mode_namespace_list=(NAMESPACE, TEAM), **changes)


def test_a_pod_override_namespace_runs_the_task_there_and_it_is_followed(cluster, make_engine):
    sink = MemorySink()
    engine = make_engine(multi(), sink=sink)
    elsewhere = make_task("elsewhere", pod_override={"metadata": {"namespace": TEAM}})
    home = make_task("home")
    engine.submit(elsewhere)
    engine.submit(home)
    assert engine.wait_idle(WAIT)
    assert sink.results[elsewhere.key].state == SUCCESS and sink.results[home.key].state == SUCCESS
    creates = cluster.stats.creates()
    assert creates[(TEAM, identity.pod_name(elsewhere.key))] == 1
    assert creates[(NAMESPACE, identity.pod_name(home.key))] == 1


def test_a_failed_pod_in_another_namespace_is_kept_there_labelled_done(cluster, make_engine):
    sink = MemorySink()
    engine = make_engine(multi(), sink=sink)
    task = make_task("broken", annotations=behave("fail"), pod_override={"metadata": {"namespace": TEAM}})
    engine.submit(task)
    assert engine.wait_idle(WAIT)
    pod = cluster.cluster.pod(TEAM, identity.pod_name(task.key))
    assert pod is not None and pod["metadata"]["labels"][identity.LABEL_DONE] == "True"


def test_a_namespace_outside_the_list_fails_the_task_before_any_api_call(cluster, make_engine):
    sink = MemorySink()
    engine = make_engine(multi(), sink=sink)
    task = make_task("stray", pod_override={"metadata": {"namespace": "team-c"}})
    engine.submit(task)
    assert engine.wait_idle(WAIT)
    result = sink.results[task.key]
    assert result.reason == "PolicyViolation" and "team-c" in result.message
    assert cluster.stats.count(method="POST", resource="pods") == 0


def test_without_a_list_every_namespace_is_watched_with_one_cluster_wide_watch(cluster, make_engine):
    sink = MemorySink()
    engine = make_engine(make_config(multi_namespace_mode=True), sink=sink)
    assert [watcher.namespace for watcher in engine.watchers] == [None]
    task = make_task("anywhere", pod_override={"metadata": {"namespace": "team-z"}})
    engine.submit(task)
    assert engine.wait_idle(WAIT)
    assert sink.results[task.key].state == SUCCESS
