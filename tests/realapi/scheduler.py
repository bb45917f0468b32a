"""The real kube-scheduler 1.20 (built with the apiserver by ``../shared/real-cluster/build-node.sh``), on loopback.

With it the tier no longer decides where pods go: the scheduler's own filters (node selectors, taints and
tolerations, resources, volume binding) and its preemption do, against Node objects built from the platform's
rendered NodePools (:mod:`tests.realapi.nodes`).  A task pod whose template does not fit its pool - a toleration
that misses the pool's taint, a selector no pool carries, requests no node can hold, a claim that is not bound -
stays Pending with the scheduler's reason, as on a real cluster.

The process runs with the admin kubeconfig (as the control plane's scheduler runs with its own credentials), no
leader election, its secure port on ``KAS_PORT + 15`` (loopback), and no insecure port.  It is started for the
test session and stopped at its end; its log is ``$KAS_ROOT/run/kube-scheduler-tests.log``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.realapi.apiserver import RealApiServer


@dataclass
class KubeScheduler:
    kas: RealApiServer
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _offset: int = 0  # where this run's lines start in the (appended) log

    @property
    def binary(self) -> Path:
        return self.kas.root / "bin" / "kube-scheduler"

    @property
    def log(self) -> Path:
        return self.kas.root / "run" / "kube-scheduler-tests.log"

    def missing(self) -> str | None:
        if not self.binary.is_file():
            return (
                f"kube-scheduler not built: {self.binary} is missing (../shared/real-cluster/build-node.sh builds it "
                "next to the apiserver)"
            )
        return None

    def start(self) -> KubeScheduler:
        kubeconfig = str(self.kas.admin_kubeconfig)
        command = [
            str(self.binary),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.kas.port + 15}",
            "--port=0",
            f"--cert-dir={self.kas.root / 'run' / 'kube-scheduler-certs'}",
            "--v=2",
        ]
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=dict(os.environ)
            )
        deadline = time.monotonic() + 60
        while "Starting Kubernetes Scheduler" not in self._log_text():
            if self.process.poll() is not None:
                raise RuntimeError(f"kube-scheduler exited ({self.process.returncode}):\n{self._log_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"kube-scheduler did not start:\n{self._log_text()[-3000:]}")
            time.sleep(0.2)
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def _log_text(self) -> str:
        try:
            with self.log.open("rb") as handle:
                handle.seek(self._offset)
                return handle.read().decode(errors="replace")
        except OSError:
            return ""
