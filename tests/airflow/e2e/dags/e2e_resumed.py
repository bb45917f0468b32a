"""One try, several launches: a deferrable task (it defers to the triggerer once, then resumes in a new pod) and a
sensor in reschedule mode (each poke is a launch of its own).  Each run of task code leaves "<task> <try> <what>"
in a shared file; the test compares them with the pods created."""

import os
from datetime import datetime, timedelta
from pathlib import Path

from airflow.providers.standard.triggers.temporal import TimeDeltaTrigger
from airflow.sdk import BaseOperator, PokeReturnValue, dag, get_current_context, task

POKES = 3


def mark(what: str) -> int:
    """Record that task code ran (``what``); how many marks of this task and try the file holds now."""
    ti = get_current_context()["ti"]
    path = Path(os.environ["E2E_SHARED_DIR"]) / f"resumed-{ti.run_id}.log"
    with open(path, "a") as marks:
        marks.write(f"{ti.task_id} {ti.try_number} {what}\n")
    return sum(line.startswith(f"{ti.task_id} {ti.try_number} ") for line in path.read_text().splitlines())


class DefersOnce(BaseOperator):
    """Runs, defers to the triggerer for a second, then resumes in ``resume`` - in a new launch of the same try."""

    def execute(self, context):
        mark("execute")
        self.defer(trigger=TimeDeltaTrigger(timedelta(seconds=1)), method_name="resume")

    def resume(self, context, event=None):
        mark("resume")
        return "resumed"


@dag(schedule=None, start_date=datetime(2024, 1, 1), catchup=False, tags=["e2e"])
def e2e_resumed():
    DefersOnce(task_id="defers_once", executor_config={"kubernetes_config": {"tier": "light"}})

    @task.sensor(
        poke_interval=1, timeout=300, mode="reschedule", executor_config={"kubernetes_config": {"tier": "light"}}
    )
    def pokes_until_the_third_time() -> PokeReturnValue:
        return PokeReturnValue(is_done=mark("poke") >= POKES)

    pokes_until_the_third_time()


e2e_resumed()
