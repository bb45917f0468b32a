"""Opt-in: flow control against a real kube-apiserver whose overload limits are tightened.

The scheduler (its defaults: no client-side rate limit) talks to a second kube-apiserver of the tier
(:mod:`tests.realapi.tight`) that lets only a couple of mutating requests in flight; the stand-in kubelet and the
test's admin client use the tier's normal server (and are exempt anyway).  Every task must succeed exactly once,
with the classic in-flight limit the server must have answered 429s and the scheduler acted on them (with APF
the writes queue first - the figures show how long - and whether latency rose enough to act on varies from run
to run), and no more than a stated share of the scheduler's writes may be answered 429.  The figures are
printed (``-s``).  Nothing depends on timing.

    flock /tmp/realapi.lock .venv/bin/python -m pytest -m realapi tests/realapi/test_overload.py -s
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.realapi.conftest import Platform
from tests.realapi.test_real_apiserver import Run, assert_exactly_once, tasks_named
from tests.realapi.tight import TightApiServer, start_tight
from tests.scheduler_process import metric, start_scheduler

pytestmark = pytest.mark.realapi
MAX_THROTTLED_SHARE = 0.25  # of the scheduler's writes
TASKS = 80


@pytest.fixture(params=[False, True], ids=["inflight-limit", "apf"])
def tight(request: pytest.FixtureRequest, platform: Platform) -> Iterator[TightApiServer]:
    apf = bool(request.param)
    server = start_tight(platform.kas, platform.tmp, max_inflight=4, max_mutating=2, apf=apf)
    yield server
    server.stop()


class TightRun(Run):
    """A scheduler of the platform whose kubeconfig points at the tight server."""

    def __init__(self, platform: Platform, server: TightApiServer, **config: object) -> None:
        super().__init__(platform, "tight", **config)
        self.kubeconfig = _pointed_at(platform.scheduler_kubeconfig, server.url, platform.tmp / "tight.kubeconfig")

    def start(self) -> None:
        self.process = start_scheduler(self.cfg, self.spool.root, self.log, kubeconfig=self.kubeconfig)


def _pointed_at(kubeconfig: Path, url: str, out: Path) -> Path:
    document = yaml.safe_load(kubeconfig.read_text())
    for cluster in document["clusters"]:
        cluster["cluster"]["server"] = url
    out.write_text(yaml.safe_dump(document))
    out.chmod(0o600)
    return out


def _dropped(metrics_text: str) -> float:
    """The server's own count of requests it refused for overload (in-flight limit or APF)."""
    total = 0.0
    for line in metrics_text.splitlines():
        if re.match(r"apiserver_(dropped_requests_total|flowcontrol_rejected_requests_total)\{", line):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _queued_seconds(metrics_text: str) -> float:
    """Seconds requests spent queued in APF (0 with APF off)."""
    total = 0.0
    for line in metrics_text.splitlines():
        if line.startswith("apiserver_flowcontrol_request_wait_duration_seconds_sum{"):
            total += float(line.rsplit(" ", 1)[1])
    return round(total, 3)


def test_the_scheduler_converges_under_a_tightened_apiserver_without_failing_tasks(platform, kubelet, tight):
    n_max = platform.config.worker_pods_max
    platform.set_quota(platform.room_for(n_max * 4))  # the overload limits, not the quota, are what pushes back
    run = TightRun(platform, tight)
    tasks = tasks_named("o", TASKS, seed=7)
    run.submit(tasks)
    run.start()
    samples = run.finish(len(tasks), 600)
    figures = assert_exactly_once(run, tasks, kubelet)
    server_metrics = tight.metrics()
    writes = metric(samples, "airflow_executor_api_writes_answered")
    throttled = metric(samples, "airflow_executor_api_writes_throttled")
    signals = metric(samples, "airflow_executor_api_write_signals")
    figures |= {
        "wall_s": round(time.monotonic() - run.started, 1),
        "writes": writes,
        "throttled": throttled,
        "throttled_share": round(throttled / writes, 3) if writes else None,
        "signals": signals,
        "server_dropped": _dropped(server_metrics),
        "server_queued_s": _queued_seconds(server_metrics),
        "window_at_end": metric(samples, "airflow_executor_api_write_window"),
        "pace_at_end": metric(samples, "airflow_executor_api_write_pace"),
    }
    print("tight apiserver:", json.dumps(figures))
    if not tight.apf:  # the classic limit answers 429 at once: the scheduler must have seen and acted on it
        assert throttled >= 1 and figures["server_dropped"] >= 1 and signals >= 1
    assert throttled / writes <= MAX_THROTTLED_SHARE, figures
