"""Stack changes applied as updates roll exactly the pods they should, and running tasks survive them.

Each case changes one thing in the tier stack while three ``kc_hold`` tasks run, applies it the way ``pulumi
up`` does (:mod:`tests.realcluster.applier`: update in place, or replace where pulumi-kubernetes replaces), and
compares, per control-plane role, the pod that served before with the one serving after.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.realcluster.conftest import Deployed, log
from tests.realcluster.images import retag
from tests.realcluster.kit import wait_for

pytestmark = pytest.mark.realcluster

ROLES = ("scheduler", "api-server", "dag-processor", "triggerer")
TASKS = {f"hold_{n}" for n in range(3)}


def serving(d: Deployed) -> dict[str, str]:
    """role -> UID of its one live pod."""
    out = {}
    for role in ROLES:
        pods = [p for p in d.pods(f"app.kubernetes.io/component={role}") if not p["metadata"].get("deletionTimestamp")]
        assert len(pods) == 1, (role, [p["metadata"]["name"] for p in pods])
        out[role] = pods[0]["metadata"]["uid"]
    return out


@dataclass
class Holding:
    run: str
    pods: dict[str, str]  # task -> pod UID


@pytest.fixture
def holding(deployed: Deployed, request: pytest.FixtureRequest) -> Iterator[Holding]:
    """Three kc_hold tasks running in their pods; released, and checked to succeed once, at the end."""
    d = deployed
    d.api.wait_for_dags(["kc_hold"])
    run = d.api.trigger("kc_hold", f"update-{request.node.name[-40:]}".replace("[", "-").replace("]", ""))

    def all_running() -> dict[str, str] | None:
        pods = d.recorder.task_pods("kc_hold", run)
        running = {
            task: p[-1]["metadata"]["uid"] for (task, _), p in pods.items() if p[-1]["status"].get("phase") == "Running"
        }
        return running if set(running) == TASKS else None

    held = Holding(run, wait_for(all_running, what="three kc_hold tasks running", timeout=900))
    yield held
    d.api.set_variable(f"kc_release_{run}", "go")
    assert d.api.wait_for_run("kc_hold", run)["state"] == "success"
    pods = d.recorder.task_pods("kc_hold", run)
    assert {task: [p["metadata"]["uid"] for p in found] for (task, _), found in pods.items()} == {
        task: [uid] for task, uid in held.pods.items()
    }  # the same pods ran every task to the end: none restarted, none created again
    for task in TASKS:
        assert [(t["try_number"], t["state"]) for t in d.api.tries("kc_hold", run, task)] == [(1, "success")]


def rolled(before: dict[str, str], after: dict[str, str]) -> set[str]:
    return {role for role in ROLES if before[role] != after[role]}


def checks(changed: dict[str, str], namespace: str) -> dict[str, str]:
    """The image-check Jobs an update ran: ``worker``/``airflow`` -> action (their names carry a digest of what
    they check, so a changed image or template is a new Job: pulumi-kubernetes replaces it)."""
    prefix = f"Job {namespace}/airflow-check-"
    found = {label[len(prefix) :]: action for label, action in changed.items() if label.startswith(prefix)}
    return {name.rsplit("-", 1)[0]: action for name, action in found.items()}


def apply_change(d: Deployed, **values: str) -> tuple[dict[str, str], dict[str, str]]:
    before = serving(d)
    stack = d.stack.with_values(**{k: v for k, v in values.items() if not k.startswith("secret_")})
    stack = stack.with_secrets(**{k[len("secret_") :]: v for k, v in values.items() if k.startswith("secret_")})
    result = d.up(stack)
    log(f"update applied in {result.seconds:.0f}s: {result.changed()}")
    return before, result.changed()


def test_an_airflow_cfg_change_updates_its_config_map_in_place_and_rolls_every_role_that_reads_it(
    deployed: Deployed, holding: Holding
):
    before, changed = apply_change(deployed, workerPodsMax=5)
    ns = deployed.namespace
    assert changed == {
        f"ConfigMap {ns}/airflow-config": "update",
        **{f"Deployment {ns}/airflow-{role}": "update" for role in ROLES},
    }
    assert rolled(before, serving(deployed)) == set(ROLES)
    cfg = deployed.kit.get("configmap", "airflow-config", ns)["data"]["airflow.cfg"]
    assert "worker_pods_max = 5" in cfg


def test_a_pod_template_change_rolls_only_the_roles_that_load_the_templates(deployed: Deployed, holding: Holding):
    """The scheduler builds pods from them, the dag-processor checks each task's pod at parse time (the cluster
    policy); the api-server and the triggerer do not read them and keep running."""
    templates = deployed.work / "templates" / "light_task.yaml"
    templates.write_text(templates.read_text().replace("workload: light", "workload: light\n    changed: tier-update"))
    before, changed = apply_change(deployed)
    ns = deployed.namespace
    assert checks(changed, ns) == {"worker": "replace"}  # the worker image is proven on the new templates again
    assert {k: v for k, v in changed.items() if not k.startswith(f"Job {ns}/airflow-check-")} == {
        f"ConfigMap {ns}/airflow-pod-templates": "update",
        f"Deployment {ns}/airflow-scheduler": "update",
        f"Deployment {ns}/airflow-dag-processor": "update",
    }
    assert rolled(before, serving(deployed)) == {"scheduler", "dag-processor"}


def test_a_secret_value_change_updates_the_secret_and_rolls_only_the_roles_that_read_that_key(
    deployed: Deployed, holding: Holding
):
    before, changed = apply_change(deployed, secret_apiSecretKey="rotated-by-the-realcluster-tier-" + "k" * 16)
    ns = deployed.namespace
    assert changed == {
        f"Secret {ns}/airflow-secrets": "update",
        f"Deployment {ns}/airflow-api-server": "update",
        f"Deployment {ns}/airflow-triggerer": "update",
    }  # [api] secret_key: the api-server and the triggerer's log server, nobody else
    assert rolled(before, serving(deployed)) == {"api-server", "triggerer"}


def test_a_new_image_tag_migrates_again_then_rolls_every_role_and_new_tasks_use_it(
    deployed: Deployed, holding: Holding
):
    old = deployed.stack.values["airflowImage"]
    new = retag(deployed.kit, old, old + "-retag")
    before, changed = apply_change(deployed, airflowImage=new, workerImage=new)
    ns = deployed.namespace
    assert checks(changed, ns) == {"worker": "replace", "airflow": "replace"}  # both images proven before the roll
    assert {k: v for k, v in changed.items() if not k.startswith(f"Job {ns}/airflow-check-")} == {
        f"Job {ns}/airflow-db-migrate": "replace",  # a Job's template is immutable: migrated again
        f"ConfigMap {ns}/airflow-config": "update",  # worker_container_image
        **{f"Deployment {ns}/airflow-{role}": "update" for role in ROLES},
    }
    assert rolled(before, serving(deployed)) == set(ROLES)
    job = deployed.kit.get("job", "airflow-db-migrate", ns)
    assert job["status"].get("succeeded") == 1
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == new
    for role in ROLES:
        (pod,) = [
            p
            for p in deployed.pods(f"app.kubernetes.io/component={role}")
            if not p["metadata"].get("deletionTimestamp")
        ]
        assert {c["image"] for c in pod["spec"]["containers"]} == {new}
