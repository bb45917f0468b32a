"""Fixtures of the real-cluster tier: the kit's cluster, the platform image, the platform applied, the Airflow API.

The tier is opt-in (``pytest -m realcluster``, ``make test-cluster``) and skips, naming the exact commands,
when the kit's binaries are not built.  One platform is deployed per session (``deployed``); the modules run in
file order (``test_01_...`` first), the ones that change the deployment (scheduler deleted, stack updates) last.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from airflow_k8s.infra.render.main import StackInputs
from airflow_k8s.infra.render.offline import Evaluation, evaluate
from tests.realcluster import workload
from tests.realcluster.airflow_api import AirflowApi
from tests.realcluster.applier import Applier, Result
from tests.realcluster.images import PlatformImage, build_platform_image, build_s3_image
from tests.realcluster.kit import ROOT, Kit
from tests.realcluster.pods import PodRecorder
from tests.realcluster.stack import DB_NAMESPACE, NAMESPACE, STACK, TierStack, tier_values

FIGURES = ROOT / "build" / "realcluster" / "figures.json"


@pytest.fixture(scope="session")
def kit() -> Iterator[Kit]:
    found = Kit.from_environment()
    why = found.missing()
    if why is not None:
        pytest.skip(why)
    found.up()
    yield found
    found.down()


@pytest.fixture(scope="session")
def figures() -> Iterator[dict[str, Any]]:
    """Measured figures, written to build/realcluster/figures.json at the end (README: the tier's table)."""
    found: dict[str, Any] = {"load_average_at_start": os.getloadavg()}
    yield found
    found["load_average_at_end"] = os.getloadavg()
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text(json.dumps(found, indent=2, sort_keys=True, default=str) + "\n")


@pytest.fixture(scope="session")
def platform_image(kit: Kit) -> PlatformImage:
    kit.ensure_kit_images()
    return build_platform_image(kit, log=ROOT / "build" / "realcluster" / "image-build.log")


def log(message: str) -> None:
    print(f"[realcluster {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Deployed:
    """The platform as the tier applied it, and how to reach and change it."""

    kit: Kit
    applier: Applier
    stack: TierStack
    work: Path
    evaluation: Evaluation
    first_up: Result
    api: AirflowApi
    recorder: PodRecorder
    log_endpoint: str  # the S3 store's in-cluster URL (the remoteLogConnId connection's endpoint_url)
    ups: list[Result] = field(default_factory=list)

    @property
    def namespace(self) -> str:
        return NAMESPACE

    @property
    def outputs(self) -> dict[str, Any]:
        return self.evaluation.plain_outputs()

    def evaluate(self, stack: TierStack) -> tuple[StackInputs, Evaluation]:
        inputs = stack.inputs(self.work / "project")
        return inputs, evaluate(inputs.config, secret_keys=inputs.secret_keys, project=inputs.project, stack=STACK)

    def up(self, stack: TierStack) -> Result:
        """``pulumi up`` of a changed stack (what the update tests do)."""
        _, self.evaluation = self.evaluate(stack)
        self.stack = stack
        result = self.applier.up(self.evaluation)
        self.ups.append(result)
        return result

    def pods(self, selector: str = "") -> list[dict[str, Any]]:
        return self.kit.items("pods", NAMESPACE, selector)


def _clean(kit: Kit, evaluation: Evaluation | None = None) -> None:
    """Remove what a previous or this run deployed (namespaces, cluster-scoped objects, the PV, the label)."""
    for namespace in (NAMESPACE, DB_NAMESPACE, workload.LOGS_NAMESPACE):
        kit.kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=true", timeout=900)
    kit.kubectl("delete", "pv", "airflow-k8s-kc-dags", "--ignore-not-found", "--wait=true", timeout=300)
    for kind in ("clusterrolebinding", "clusterrole", "priorityclass"):
        names = kit.kubectl("get", kind, "-o", "name").split()
        ours = [n for n in names if n.split("/", 1)[1].startswith("airflow-")]
        if ours:
            kit.kubectl("delete", *ours, "--ignore-not-found", timeout=300)
    workload.unlabel_node(kit)


@pytest.fixture(scope="session")
def deployed(kit: Kit, platform_image: PlatformImage, figures: dict[str, Any]) -> Iterator[Deployed]:
    work = kit.root / "airflow-k8s" / "tier"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    log(f"image {platform_image.ref} ({'built' if platform_image.built else 'already imported'})")
    _clean(kit)
    dags = work / "dags"
    workload.seed_dags(dags)
    templates = workload.single_node_templates(work / "templates")
    database_url = workload.start_postgres(kit)
    log_endpoint = workload.start_log_store(kit, build_s3_image(kit))
    workload.label_node(kit)
    stack = TierStack(tier_values(platform_image.ref, templates), {"databaseUrl": database_url})
    inputs = stack.inputs(work / "project")
    evaluation = evaluate(inputs.config, secret_keys=inputs.secret_keys, project=inputs.project, stack=STACK)
    outputs = evaluation.plain_outputs()
    kit.apply_objects([workload.dags_volume("airflow-k8s-kc-dags", dags, NAMESPACE, outputs["dagsPvcName"])])
    recorder = PodRecorder(kit, NAMESPACE).start()
    applier = Applier(kit, log=log)
    try:
        result = applier.up(evaluation)
    except Exception as exc:
        raise RuntimeError(workload.redact(str(exc), database_url)) from None
    figures["apply_to_all_ready_seconds"] = round(result.seconds, 1)
    figures["apply_ready_order"] = [(label, round(a, 1), round(r, 1)) for label, a, r in result.ready_order()]
    log(f"platform up in {result.seconds:.0f}s")
    api = AirflowApi(kit, NAMESPACE, outputs["apiServerServiceName"])
    api.request("POST", "/connections", workload.log_connection(log_endpoint))
    deployment = Deployed(kit, applier, stack, work, evaluation, result, api, recorder, log_endpoint, [result])
    yield deployment
    recorder.stop()
    if os.environ.get("KC_KEEP_PLATFORM") != "1":
        _clean(kit, evaluation)
        shutil.rmtree(work, ignore_errors=True)
