"""/readyz fails while the task intake is stalled: a scheduler that reads nothing must not look healthy."""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request

from airflow_k8s.executor.engine.server import StatusServer
from airflow_k8s.executor.tasks.spool import Spool
from tests.fakekube.cluster import wait_for


def readyz(server: StatusServer) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/readyz", timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_readyz_fails_while_the_intake_directory_cannot_be_read_and_recovers(make_engine, tmp_path):
    spool = Spool(tmp_path / "intake")
    engine = make_engine(intake=spool.scan)
    server = StatusServer(engine.metrics.registry, healthy=engine.healthy, ready=engine.ready, host="127.0.0.1", port=0)
    server.start()
    try:
        wait_for(lambda: readyz(server) == 200, timeout=30, message="never ready")
        shutil.rmtree(spool.incoming)
        spool.incoming.write_text("no longer a directory")
        wait_for(lambda: readyz(server) == 503, timeout=30, message="/readyz stayed green with a stalled intake")
        assert engine.healthy()  # liveness is the engine loop's; restarting would not fix the volume
        spool.incoming.unlink()
        spool.incoming.mkdir()
        (spool.incoming / "t.json").write_text(
            json.dumps({"dag_id": "d", "task_id": "t", "run_id": "r", "command": ["true"]})
        )
        wait_for(lambda: readyz(server) == 200, timeout=30, message="never ready again")
    finally:
        server.stop()
