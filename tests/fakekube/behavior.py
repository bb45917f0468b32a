"""What a simulated pod does once scheduled: the :class:`Behavior` value and the default, annotation-driven policy.

The simulation calls ``behavior(pod_dict) -> Behavior`` once per pod, when it first sees it.  Tests in the same
process can install any callable (``server.cluster.behavior = fn``); out-of-process users steer the default policy
through pod annotations:

=============================  ======================================================================================
``fakekube/outcome``           succeed | fail | hang | oomkill | errimagepull | invalidimagename |
                               createcontainerconfigerror  (default: succeed)
``fakekube/run-seconds``       how long the container runs (default: the cluster's ``run_seconds``)
``fakekube/exit-code``         exit code for ``fail`` (default 1)
``fakekube/log``               log lines, newline separated
``fakekube/cpu-usage``         metrics usage as a fraction of the request (default 0.5)
``fakekube/memory-usage``      likewise for memory (default 0.5)
=============================  ======================================================================================

An image whose tag is ``bad`` or whose name contains ``does-not-exist`` fails to pull (``ErrImagePull``) whatever
the annotations say.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SUCCEED, FAIL, HANG, OOMKILL = "succeed", "fail", "hang", "oomkill"
ERR_IMAGE_PULL, INVALID_IMAGE_NAME, CREATE_CONTAINER_CONFIG_ERROR = (
    "errimagepull",
    "invalidimagename",
    "createcontainerconfigerror",
)
#: outcome -> the container's ``state.waiting.reason`` while it is stuck in Pending.
WAITING_REASONS = {
    ERR_IMAGE_PULL: "ErrImagePull",
    INVALID_IMAGE_NAME: "InvalidImageName",
    CREATE_CONTAINER_CONFIG_ERROR: "CreateContainerConfigError",
}
OUTCOMES = frozenset({SUCCEED, FAIL, HANG, OOMKILL, *WAITING_REASONS})
ANNOTATION_PREFIX = "fakekube/"


@dataclass(frozen=True)
class Behavior:
    """A pod's scripted life.  ``None`` fields take the cluster defaults / outcome-specific defaults."""

    outcome: str = SUCCEED
    run_seconds: float | None = None
    exit_code: int | None = None  # for fail (default 1) and oomkill (default 137); succeed always exits 0
    waiting_reason: str | None = None
    waiting_message: str | None = None
    log: tuple[str, ...] = ()
    cpu_usage: float = 0.5
    memory_usage: float = 0.5

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {self.outcome!r}; expected one of {sorted(OUTCOMES)}")

    @property
    def stuck_waiting(self) -> bool:
        """The container never starts (image or config error): the pod stays Pending."""
        return self.outcome in WAITING_REASONS or self.waiting_reason is not None

    @property
    def final_exit_code(self) -> int:
        if self.outcome == OOMKILL:
            return 137 if self.exit_code is None else self.exit_code
        if self.outcome == FAIL:
            return 1 if self.exit_code is None else self.exit_code
        return 0  # succeed (and hang, should it ever be completed by hand)

    @property
    def terminated_reason(self) -> str:
        if self.outcome == OOMKILL:
            return "OOMKilled"
        return "Completed" if self.final_exit_code == 0 else "Error"

    def waiting(self, image: str) -> tuple[str, str]:
        """(reason, message) for a container that never starts."""
        reason = self.waiting_reason or WAITING_REASONS.get(self.outcome, "ErrImagePull")
        if self.waiting_message:
            return reason, self.waiting_message
        if reason == "InvalidImageName":
            return reason, f'Failed to apply default image tag "{image}": couldn\'t parse image reference: invalid'
        if reason == "CreateContainerConfigError":
            return reason, 'secret "fakekube-missing" not found'
        return reason, (
            f'Failed to pull image "{image}": rpc error: code = NotFound desc = failed to pull and unpack image '
            f'"{image}": not found'
        )


BehaviorPolicy = Callable[[dict[str, Any]], Behavior]


def image_is_bad(image: str) -> bool:
    last = image.rsplit("/", 1)[-1].split("@", 1)[0]
    tag = last.split(":", 1)[1] if ":" in last else ""
    return tag == "bad" or "does-not-exist" in image


def default_behavior(pod: dict[str, Any]) -> Behavior:
    """The annotation-driven policy described in the module docstring."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}

    def number(key: str, kind: type[float] | type[int]) -> Any:
        raw = annotations.get(ANNOTATION_PREFIX + key)
        return None if raw in (None, "") else kind(raw)

    outcome = annotations.get(ANNOTATION_PREFIX + "outcome", SUCCEED).strip().lower()
    images = [str(c.get("image", "")) for c in (pod.get("spec") or {}).get("containers") or []]
    if any(image_is_bad(image) for image in images):
        outcome = ERR_IMAGE_PULL
    log = annotations.get(ANNOTATION_PREFIX + "log")
    return Behavior(
        outcome=outcome,
        run_seconds=number("run-seconds", float),
        exit_code=number("exit-code", int),
        log=tuple(log.splitlines()) if log else (),
        cpu_usage=number("cpu-usage", float) or 0.5,
        memory_usage=number("memory-usage", float) or 0.5,
    )
