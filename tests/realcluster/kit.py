"""The real single-node cluster of ``../shared/real-cluster/`` (the "kit"): find it, start it, drive it, stop it.

The kit's scripts bring up Kubernetes 1.20.2 on this machine (containerd, kubelet, kube-proxy, control plane,
a small cluster DNS) on the bridge ``kc0`` (10.244.0.0/24); see its README.  This module only *calls* them:

``KC_SCRIPTS``  the kit's directory (default: the first ``shared/real-cluster`` above this repository, which
                is ``/work/shared/real-cluster`` for a work tree and ``<clone>/../shared/real-cluster`` in CI)
``KC_ROOT``     the kit's state (default ``/tmp/kc``): kubeconfig, containerd socket, images
``KAS_ROOT``    where ``build-node.sh`` put the binaries (default ``/tmp/kas``; ``bin/`` below it)

:meth:`Kit.missing` says, with the exact commands, why the tier cannot run; :meth:`Kit.kubectl` runs the kit's
kubectl with the admin kubeconfig.  Network rule: everything here talks to loopback or 10.244.0.0/24 only.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[2]
BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kubelet", "kube-proxy")
KIT_AIRFLOW_IMAGE = "localhost/kc/airflow:3.3.2"
KIT_POSTGRES_IMAGE = "localhost/kc/postgres:15"
KIT_PAUSE_IMAGE = "localhost/kc/pause:1.0"
BRIDGE_PREFIX = "10.244.0."  # the only non-loopback addresses the tier may send traffic to

T = TypeVar("T")


class KitError(RuntimeError):
    """A kit script or kubectl call failed; the message carries its output."""


def _find_scripts() -> Path:
    explicit = os.environ.get("KC_SCRIPTS")
    if explicit:
        return Path(explicit)
    for parent in ROOT.parents:
        candidate = parent / "shared" / "real-cluster"
        if (candidate / "up.sh").is_file():
            return candidate
    return ROOT.parent / "shared" / "real-cluster"


def wait_for(condition: Callable[[], T | None], *, what: str, timeout: float, period: float = 2.0) -> T:
    """Poll ``condition`` until it returns something truthy; :class:`TimeoutError` naming ``what`` after ``timeout``.

    Deadlines are generous (the cluster shares 2 cores with other work): they bound a hang, they never time a
    reaction.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = condition()
        if last:
            return last
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(period)


@dataclass
class Kit:
    scripts: Path
    root: Path
    bin: Path
    started_here: bool = False

    @classmethod
    def from_environment(cls) -> Kit:
        kas = Path(os.environ.get("KAS_ROOT", "/tmp/kas"))
        return cls(
            _find_scripts(), Path(os.environ.get("KC_ROOT", "/tmp/kc")), Path(os.environ.get("KC_BIN", kas / "bin"))
        )

    # -- can it run here? ----------------------------------------------------------------------------------------
    def missing(self) -> str | None:
        """Why the tier cannot run here, with the commands that fix it (None: it can)."""
        if not (self.scripts / "up.sh").is_file():
            return f"the real-cluster kit is not at {self.scripts} (set KC_SCRIPTS to ../shared/real-cluster)"
        absent = [name for name in BINARIES if not (self.bin / name).is_file()]
        if absent:
            return (
                f"Kubernetes node binaries not built ({', '.join(absent)} missing in {self.bin}); build them once "
                f"(20-35 min): cd {self.scripts} && ./deps.sh && ./build-node.sh"
            )
        if os.geteuid() != 0:
            return "the real-cluster kit runs containerd and kubelet as root: run the tier as root"
        return None

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def socket(self) -> Path:
        return self.root / "containerd" / "containerd.sock"

    # -- lifecycle -------------------------------------------------------------------------------------------------
    def node_ready(self) -> bool:
        if not self.kubeconfig.is_file() or not self.running():
            return False  # no apiserver: 10.244.0.1 would not be on this machine's bridge
        try:
            node = self.get("node", "kc-node")
        except KitError:
            return False
        conditions = {c["type"]: c["status"] for c in node.get("status", {}).get("conditions") or []}
        return conditions.get("Ready") == "True"

    def running(self) -> bool:
        """Every kit process alive (by its recorded pid) - checked before any traffic to the cluster's bridge."""
        names = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy")
        for name in (*names, "containerd"):
            pid = self.root / "run" / f"{name}.pid"
            try:
                os.kill(int(pid.read_text()), 0)
            except (OSError, ValueError):
                return False
        return True

    def up(self) -> None:
        """Start the cluster unless it runs already (then it is left running at the end).

        A running cluster is never "upped" again: ``up.sh`` rewrites kube-proxy's config file, and kube-proxy
        exits when that file changes.
        """
        if self.running() and self.node_ready():
            return
        self.script("up.sh", timeout=1200)
        self.started_here = True

    def down(self) -> None:
        """Stop the cluster if this process started it (``down.sh``: no process, mount or chain left)."""
        if self.started_here:
            self.script("down.sh", timeout=600)
            self.started_here = False

    def script(self, name: str, *args: str, timeout: float = 1800, env: dict[str, str] | None = None) -> str:
        completed = subprocess.run(
            [str(self.scripts / name), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, "KC_ROOT": str(self.root), "KAS_ROOT": str(self.bin.parent), **(env or {})},
        )
        if completed.returncode != 0:
            raise KitError(
                f"{name} failed ({completed.returncode}):\n{completed.stdout[-4000:]}\n{completed.stderr[-4000:]}"
            )
        return completed.stdout

    # -- kubectl and containerd ------------------------------------------------------------------------------------
    def kubectl(self, *args: str, input: str | None = None, timeout: float = 120, check: bool = True) -> str:
        argv = [str(self.bin / "kubectl"), "--kubeconfig", str(self.kubeconfig), *args]
        completed = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout, check=False)
        if check and completed.returncode != 0:
            raise KitError(f"kubectl {shlex.join(args)} failed:\n{completed.stderr.strip()[-4000:]}")
        return completed.stdout

    def get(self, kind: str, name: str = "", namespace: str | None = None) -> dict[str, Any]:
        args = ["get", kind, *([name] if name else []), "-o", "json"]
        if namespace:
            args += ["-n", namespace]
        return dict(json.loads(self.kubectl(*args)))

    def exists(self, kind: str, name: str, namespace: str | None = None) -> bool:
        args = ["get", kind, name, "--ignore-not-found", "-o", "name"]
        if namespace:
            args += ["-n", namespace]
        return bool(self.kubectl(*args).strip())

    def items(self, kind: str, namespace: str | None = None, selector: str = "") -> list[dict[str, Any]]:
        args = ["get", kind, "-o", "json", *(["-n", namespace] if namespace else ["--all-namespaces"])]
        if selector:
            args += ["-l", selector]
        return list(json.loads(self.kubectl(*args))["items"])

    def apply_objects(self, objects: Sequence[dict[str, Any]]) -> None:
        """Create or update plain objects the tier itself owns (not the platform: see :mod:`.applier`)."""
        self.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}))

    def ctr(self, *args: str, timeout: float = 600) -> str:
        argv = ["ctr", "--address", str(self.socket), "-n", "k8s.io", *args]
        completed = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        if completed.returncode != 0:
            raise KitError(f"ctr {shlex.join(args)} failed:\n{completed.stderr.strip()[-2000:]}")
        return completed.stdout

    def images(self) -> set[str]:
        return set(self.ctr("images", "ls", "-q").split())

    def ensure_kit_images(self) -> None:
        """The kit's Airflow and Postgres images (built locally once: 2-6 min each)."""
        if KIT_AIRFLOW_IMAGE not in self.images():
            self.script("airflow-image.sh", timeout=3000)
        if KIT_POSTGRES_IMAGE not in self.images():
            self.script("images.sh", "postgres", timeout=3000)
