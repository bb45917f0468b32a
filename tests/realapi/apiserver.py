"""The real kube-apiserver of ``../shared/real-apiserver/``: find it, start it (or reuse a running one), stop it.

``KAS_ROOT`` (default ``/tmp/kas``) holds the binaries (``bin/``), the run state and the admin kubeconfig;
``KAS_SCRIPTS`` (default ``<repository>/../shared/real-apiserver``) holds ``up.sh``/``down.sh``; ``KAS_PORT``
(default 16443) is the apiserver's port.  A server this module started is stopped again by :meth:`stop`; a
server that was already running is left alone.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from airflow_k8s.executor.contract.errors import KubeApiError
from airflow_k8s.executor.kube.client import KubeClient

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class RealApiServer:
    root: Path
    scripts: Path
    port: int
    started_here: bool = False

    @classmethod
    def from_environment(cls) -> RealApiServer:
        root = Path(os.environ.get("KAS_ROOT", "/tmp/kas"))
        scripts = Path(os.environ.get("KAS_SCRIPTS", ROOT.parent / "shared" / "real-apiserver"))
        return cls(root, scripts, int(os.environ.get("KAS_PORT", "16443")))

    def missing(self) -> str | None:
        """Why this tier cannot run here (None: it can)."""
        binary = self.root / "bin" / "kube-apiserver"
        if not binary.is_file():
            return (
                f"real kube-apiserver not built: {binary} is missing "
                f"(build it once with {self.scripts / 'build.sh'}, see its README; set KAS_ROOT to use another place)"
            )
        if not (self.scripts / "up.sh").is_file():
            return f"{self.scripts / 'up.sh'} not found (set KAS_SCRIPTS to the real-apiserver scripts directory)"
        return None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def ca_file(self) -> Path:
        return self.root / "run" / "pki" / "ca.crt"

    def admin(self, pool_size: int = 8) -> KubeClient:
        """A client with the admin identity (system:masters): for the tests' own setup and stand-ins."""
        return KubeClient.from_settings(
            in_cluster=False, config_file=str(self.admin_kubeconfig), pool_size=pool_size, request_timeout=30
        )

    def ready(self) -> bool:
        if not self.admin_kubeconfig.is_file():
            return False
        try:
            client = self.admin()
        except KubeApiError:
            return False
        try:
            return client.request("GET", "/readyz", headers={"Accept": "text/plain"}) == "ok"
        except KubeApiError:
            return False
        finally:
            client.close()

    def start(self) -> None:
        """Reuse a ready server, or run ``up.sh`` (etcd + kube-apiserver + kube-controller-manager)."""
        if self.ready():
            return
        self._up()
        self.started_here = True

    def _up(self) -> None:
        env = {**os.environ, "KAS_ROOT": str(self.root), "KAS_PORT": str(self.port)}
        completed = subprocess.run(
            ["bash", str(self.scripts / "up.sh")], env=env, capture_output=True, text=True, timeout=300, check=False
        )
        if completed.returncode != 0:
            raise RuntimeError(f"up.sh failed ({completed.returncode}):\n{completed.stdout[-2000:]}{completed.stderr}")
        deadline = time.monotonic() + 60
        while not self.ready():
            if time.monotonic() > deadline:
                raise RuntimeError(f"the apiserver did not become ready; see {self.root / 'run'}")
            time.sleep(0.5)

    def restart_apiserver(self, grace: float = 5.0) -> None:
        """Stop the kube-apiserver process (SIGTERM, SIGKILL after ``grace`` s) and start it again with ``up.sh``.

        etcd and the controller-manager keep running and the data stays.  While it is down, etcd's revision
        moves on (a key outside ``/registry`` is written and deleted straight in etcd, as the other apiservers of
        an HA control plane would keep writing), so the new process builds its watch cache from a list newer than
        any resourceVersion a client saw: a client resuming its watch gets 410 Expired, as after any apiserver
        rollout on a busy cluster.
        """
        pid_file = self.root / "run" / "kube-apiserver.pid"
        pid = int(pid_file.read_text())
        if "kube-apiserver" not in Path(f"/proc/{pid}/cmdline").read_text(errors="replace"):
            raise RuntimeError(f"pid {pid} in {pid_file} is not a kube-apiserver")
        os.kill(pid, signal.SIGTERM)
        if not _exited(pid, grace):  # it drains long-running requests for a while; do not wait for that
            os.kill(pid, signal.SIGKILL)
            if not _exited(pid, 10):
                raise RuntimeError(f"kube-apiserver pid {pid} did not exit")
        pid_file.unlink()  # as down.sh does: up.sh must not take a dead (maybe unreaped) pid for a live one
        self._etcd("put", {"key": _b64("/airflow-k8s-tests/revision"), "value": _b64("moved")})
        self._etcd("deleterange", {"key": _b64("/airflow-k8s-tests/revision")})
        self._up()

    def _etcd(self, verb: str, body: dict[str, str]) -> None:
        """One call to etcd's v3 JSON gateway (``/v3/kv/<verb>``) on loopback."""
        port = int(os.environ.get("KAS_ETCD_PORT", "23790"))
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v3/kv/{verb}", data=json.dumps(body).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback etcd
            response.read()

    def stop(self) -> None:
        if self.started_here:
            env = {**os.environ, "KAS_ROOT": str(self.root)}
            subprocess.run(
                ["bash", str(self.scripts / "down.sh")], env=env, capture_output=True, timeout=60, check=False
            )
            self.started_here = False


def _exited(pid: int, timeout: float) -> bool:
    """Whether ``pid`` is gone (or a zombie) within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.1)
    return False


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
