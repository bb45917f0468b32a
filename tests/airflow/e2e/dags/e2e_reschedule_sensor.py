"""A reschedule-mode sensor that pokes five times: each poke is the same try handed back to the executor,
asked for by the task itself - it must run in a pod of its own every time and never count as a loop."""

import os
from datetime import datetime
from pathlib import Path

from airflow.sdk import dag, get_current_context, task

POKES = 5


@dag(schedule=None, start_date=datetime(2024, 1, 1), catchup=False, tags=["e2e"])
def e2e_reschedule_sensor():
    @task.sensor(
        poke_interval=1, timeout=600, mode="reschedule", executor_config={"kubernetes_config": {"tier": "light"}}
    )
    def five_pokes() -> bool:
        ti = get_current_context()["ti"]
        marks = Path(os.environ["E2E_SHARED_DIR"]) / "pokes.log"
        with open(marks, "a") as out:
            out.write(f"{ti.id} {ti.try_number}\n")
        return len(marks.read_text().splitlines()) >= POKES

    five_pokes()


e2e_reschedule_sensor()
