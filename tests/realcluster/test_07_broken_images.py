"""Images users build wrong, on the real cluster: the image preflight stops each ``up`` before the control plane
rolls, naming the problem; with the preflight off, a task on a broken worker image fails with the reason.

Deliberately broken images (:func:`tests.realcluster.images.build_broken_images`): the platform image without a
passwd entry for UID 50000 (``no-uid``), the platform image declaring ``AIRFLOW_HOME=/home/airflow``
(``airflow-home``), and a good Airflow image without this package as the scheduler's (``no-package``).  After
each case the good stack is applied again, so the next starts from a working platform.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.realcluster.applier import UpFailed
from tests.realcluster.conftest import Deployed, log
from tests.realcluster.images import PlatformImage, build_broken_images

pytestmark = pytest.mark.realcluster
ROLES = ("scheduler", "api-server", "dag-processor", "triggerer")


def serving(d: Deployed) -> dict[str, str]:
    out = {}
    for role in ROLES:
        pods = [p for p in d.pods(f"app.kubernetes.io/component={role}") if not p["metadata"].get("deletionTimestamp")]
        out[role] = ",".join(sorted(p["metadata"]["uid"] for p in pods))
    return out


@pytest.fixture(scope="module")
def broken(deployed: Deployed, platform_image: PlatformImage) -> dict[str, str]:
    return build_broken_images(deployed.kit, platform_image.ref)  # the built one (earlier tests may retag it)


@pytest.fixture
def restore(deployed: Deployed) -> Iterator[None]:
    good = deployed.stack
    yield
    result = deployed.up(good)
    log(f"good stack applied again in {result.seconds:.0f}s")


@pytest.mark.parametrize(
    ("image", "key", "message"),
    [
        ("no-uid", "workerImage", "uid 50000 has no passwd entry in the image"),
        ("airflow-home", "workerImage", "the image sets AIRFLOW_HOME=/home/airflow"),
        ("no-package", "airflowImage", "this platform's executor is not in the image"),
    ],
)
def test_the_preflight_stops_the_up_naming_what_is_wrong_with_the_image_before_the_control_plane_rolls(
    deployed: Deployed, broken: dict[str, str], restore: None, image: str, key: str, message: str
):
    before = serving(deployed)
    with pytest.raises(UpFailed) as failed:
        deployed.up(deployed.stack.with_values(**{key: broken[image]}))
    text = str(failed.value)
    assert "-check-" in text.split("\n", 1)[0], text[:500]  # the image check Job failed the up
    assert message in text, text[-3000:]
    assert broken[image] in text  # the message names the image
    assert serving(deployed) == before  # no control-plane pod was touched
    for role in ROLES:
        (deployment,) = [
            d
            for d in deployed.kit.items("deployments", deployed.namespace)
            if d["metadata"]["name"] == f"airflow-{role}"
        ]
        assert broken[image] not in {c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]}


def test_with_the_preflight_off_a_task_on_an_image_without_its_user_fails_with_the_reason(
    deployed: Deployed, broken: dict[str, str], restore: None
):
    d = deployed
    d.up(d.stack.with_values(workerImage=broken["no-uid"], imagePreflight=False))
    d.api.wait_for_dags(["kc_hardening"])
    run = d.api.trigger("kc_hardening", "broken-image-run")
    assert d.api.wait_for_run("kc_hardening", run)["state"] == "failed"
    tries = d.api.tries("kc_hardening", run, "probe")
    assert [(t["try_number"], t["state"]) for t in tries] == [(1, "failed")]  # retries=0: one pod, no loop
    pods = d.recorder.task_pods("kc_hardening", run)
    assert list(pods) == [("probe", 1)] and len(pods[("probe", 1)]) == 1
    (pod,) = pods[("probe", 1)]
    assert {c["image"] for c in pod["spec"]["containers"]} == {broken["no-uid"]}
    reasons = " ".join(entry.get("extra") or "" for entry in d.api.event_logs("kc_hardening", "state mismatch"))
    assert "uid not found" in reasons or "no username" in reasons or "getpwuid" in reasons, reasons[-3000:]
