"""Tries Airflow hands back to the executor, in a real Airflow 3.3.2 (:mod:`.stack`): a worker that cannot
find its DAG loops until the executor fails the try with its pod's last log lines; a reschedule-mode sensor
pokes as often as it likes, each poke in a pod of its own."""

from __future__ import annotations

import pytest

from airflow_k8s.executor.contract.config import ExecutorConfig
from tests.airflow.e2e.stack import AirflowStack
from tests.airflow.e2e.test_airflow_users import ended_run_pods
from tests.airflow.e2e.test_end_to_end import marks

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

LIMIT = ExecutorConfig().unrequested_reschedule_limit  # the e2e stack keeps the default


@pytest.fixture(scope="module")
def loop_dags(stack: AirflowStack) -> AirflowStack:
    stack.wait_for_dags(["e2e_lost_dag", "e2e_reschedule_sensor"])
    return stack


def test_a_worker_that_cannot_find_its_dag_fails_within_the_bounded_repeats_with_its_pods_reason(loop_dags):
    stack = loop_dags
    run_id = stack.api.trigger("e2e_lost_dag", "lost-run")
    assert stack.wait_for_run("e2e_lost_dag", run_id, timeout=600)["state"] == "failed"

    (only_try,) = stack.api.tries("e2e_lost_dag", run_id, "never_found")
    assert (only_try["try_number"], only_try["state"]) == (1, "failed")
    # A pod for each launch of the one try, each created once: the first run and LIMIT returns (the first
    # return only arms reading the log, the next LIMIT - 1 count); the return after is failed instead.
    (pods,) = ended_run_pods(stack, "e2e_lost_dag", run_id).values()
    assert len(pods) == LIMIT + 1
    assert [stack.fake.creates()[pod["metadata"]["name"]] for pod in pods] == [1] * (LIMIT + 1)
    (mismatch,) = [entry["extra"] for entry in stack.api.event_logs("e2e_lost_dag", "state mismatch")]
    assert f"came back {LIMIT} times without the task asking to be rescheduled" in mismatch, mismatch
    assert "Dag not found during start up" in mismatch, mismatch


def test_a_reschedule_sensor_is_not_mistaken_for_a_loop(loop_dags):
    stack = loop_dags
    run_id = stack.api.trigger("e2e_reschedule_sensor", "sensor-run")
    assert stack.wait_for_run("e2e_reschedule_sensor", run_id, timeout=600)["state"] == "success"

    pokes = marks(stack, "pokes.log")
    assert len(pokes) == 5 > LIMIT + 1
    assert {try_number for _, try_number in pokes} == {1}  # one try, handed back four times
    (pods,) = ended_run_pods(stack, "e2e_reschedule_sensor", run_id).values()
    assert len(pods) == 5  # every poke ran in a pod of its own, each created once
    assert [stack.fake.creates()[pod["metadata"]["name"]] for pod in pods] == [1] * 5
    assert stack.api.event_logs("e2e_reschedule_sensor", "state mismatch") == []
