"""The platform applied as ``pulumi up`` would: migration first, then a Ready, hardened control plane."""

from __future__ import annotations

import pytest

from tests.realcluster.conftest import Deployed
from tests.realcluster.kit import KitError

pytestmark = pytest.mark.realcluster

ROLES = ("scheduler", "api-server", "dag-processor", "triggerer")


def test_the_migration_job_completes_before_any_control_plane_deployment_is_applied(deployed: Deployed):
    job = deployed.kit.get("job", deployed.outputs["migrationJobName"], deployed.namespace)
    assert job["status"].get("succeeded") == 1, job["status"]
    timeline = {label: (applied, ready) for label, applied, ready in deployed.first_up.ready_order()}
    _, migrated = timeline[f"Job {deployed.namespace}/{deployed.outputs['migrationJobName']}"]
    for role in ROLES:
        applied, _ = timeline[f"Deployment {deployed.namespace}/airflow-{role}"]
        assert applied >= migrated, (role, applied, migrated)
    # and everything the Job reads existed before it: its namespace, Secret, ConfigMap and service account
    order = deployed.first_up.order()
    job_at = order.index(f"Job {deployed.namespace}/{deployed.outputs['migrationJobName']}")
    for needed in (
        f"Namespace {deployed.namespace}",
        f"Secret {deployed.namespace}/{deployed.outputs['secretName']}",
        f"ConfigMap {deployed.namespace}/{deployed.outputs['airflowConfigMapName']}",
        f"ServiceAccount {deployed.namespace}/airflow-control-plane",
    ):
        assert order.index(needed) < job_at, needed


def test_only_the_pod_disruption_budgets_needed_an_adaptation_to_kubernetes_1_20(deployed: Deployed):
    assert deployed.first_up.skipped == []
    assert {label.split()[0] for label, _ in deployed.first_up.adapted} == {"PodDisruptionBudget"}
    budgets = deployed.kit.items("poddisruptionbudgets.v1beta1.policy", deployed.namespace)
    assert sorted(b["metadata"]["name"] for b in budgets) == sorted(f"airflow-{role}" for role in ROLES)


@pytest.mark.parametrize("role", ROLES)
def test_each_control_plane_role_is_ready_with_its_probes_passing_and_never_restarted(deployed: Deployed, role: str):
    (pod,) = [
        p for p in deployed.pods(f"app.kubernetes.io/component={role}") if not p["metadata"].get("deletionTimestamp")
    ]
    container = next(c for c in pod["spec"]["containers"] if c["name"] == role)
    assert {"startupProbe", "livenessProbe", "readinessProbe"} <= set(container), sorted(container)
    conditions = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
    assert conditions["Ready"] == "True" and conditions["ContainersReady"] == "True"
    (status,) = [s for s in pod["status"]["containerStatuses"] if s["name"] == role]
    assert status["ready"] is True and status["started"] is True
    assert status["restartCount"] == 0, status  # no liveness or startup probe ever killed it
    init = pod["status"].get("initContainerStatuses") or []
    # the schema check first; the api-server then writes the simple auth manager's Admin password file
    expected = [("wait-for-migrations", 0)] + ([("admin-password", 0)] if role == "api-server" else [])
    assert [(s["name"], s["state"].get("terminated", {}).get("exitCode")) for s in init] == expected


@pytest.mark.parametrize("role", ROLES)
def test_each_control_plane_role_runs_as_airflow_on_a_root_filesystem_the_kubelet_made_read_only(
    deployed: Deployed, role: str
):
    (pod,) = [
        p for p in deployed.pods(f"app.kubernetes.io/component={role}") if not p["metadata"].get("deletionTimestamp")
    ]
    probe = (
        "import os, errno, pwd\n"
        "def w(d):\n"
        "    try:\n"
        "        f = os.path.join(d, '.kc-probe'); open(f, 'w').close(); os.unlink(f); return 'ok'\n"
        "    except OSError as e:\n"
        "        return errno.errorcode[e.errno]\n"
        "print(os.getuid(), os.getgid(), pwd.getpwuid(os.getuid()).pw_name, w('/'), w('/opt/airflow'), w('/tmp'),"
        " w('/opt/airflow/logs'), os.path.exists('/var/run/secrets/kubernetes.io/serviceaccount'))\n"
    )
    try:
        out = deployed.kit.kubectl("exec", pod["metadata"]["name"], "-n", deployed.namespace, "-c", role, "--",
                                   "python", "-c", probe)  # fmt: skip
    except KitError as exc:
        pytest.fail(f"exec into {role}: {exc}")
    uid, gid, user, root, home, tmp, logs, token = out.split()
    assert (uid, gid, user) == ("50000", "0", "airflow")
    assert (root, home) == ("EROFS", "EROFS")  # the image's files cannot be changed
    assert (tmp, logs) == ("ok", "ok")  # the two emptyDirs Airflow writes to
    assert token == str(role in ("scheduler", "api-server"))  # only the roles that call the Kubernetes API
