"""A second kube-apiserver with tightened overload limits, in front of the same etcd as the tier's server.

``up.sh`` (shared, not edited here) starts the tier's server with the default limits.  This starts one more
kube-apiserver process on ``KAS_TIGHT_PORT`` (default: the tier's port + 100) with the same flags, PKI and etcd -
so it serves the same objects, as a second apiserver of an HA control plane would - plus
``--max-requests-inflight`` / ``--max-mutating-requests-inflight`` set low.  With ``apf=False``
(``--enable-priority-and-fairness=false``) those are the classic in-flight limits: a request over them is
refused at once with 429 and ``Retry-After: 1``; with APF on (1.20's default), they are the seats APF shares out
among its priority levels, so writes queue first (rising latency) and get 429 when their queues are full.
Requests of ``system:masters`` are exempt either way, so the admin client and the stand-in kubelet are not
limited; the scheduler's ServiceAccount token is.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from airflow_k8s.executor.contract.errors import KubeApiError
from airflow_k8s.executor.kube.client import KubeClient
from tests.realapi.apiserver import RealApiServer

ISSUER = "https://kubernetes.default.svc.cluster.local"
ADMISSION = (
    "NamespaceLifecycle,LimitRanger,ServiceAccount,DefaultStorageClass,DefaultTolerationSeconds,"
    "MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ResourceQuota"
)


@dataclass
class TightApiServer:
    kas: RealApiServer
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    apf: bool

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def metrics(self) -> str:
        """The server's own Prometheus metrics (read with the admin identity)."""
        client = self.admin()
        try:
            text = client.request("GET", "/metrics", headers={"Accept": "text/plain"})
        finally:
            client.close()
        return str(text)

    def admin(self) -> KubeClient:
        """A client of this server with the admin identity (exempt from the limits)."""
        return KubeClient.from_settings(in_cluster=False, config_file=str(self.kubeconfig), request_timeout=30)

    @property
    def kubeconfig(self) -> Path:
        return self.log.parent / "tight-admin.kubeconfig"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def start_tight(
    kas: RealApiServer, workdir: Path, *, max_inflight: int, max_mutating: int, apf: bool
) -> TightApiServer:
    """Start the second server (module docstring) and wait until it is ready."""
    port = int(os.environ.get("KAS_TIGHT_PORT", str(kas.port + 100)))
    pki = kas.root / "run" / "pki"
    etcd = int(os.environ.get("KAS_ETCD_PORT", "23790"))
    log = workdir / "tight-apiserver.log"
    command = [
        str(kas.root / "bin" / "kube-apiserver"),
        f"--etcd-servers=http://127.0.0.1:{etcd}",
        "--bind-address=127.0.0.1", f"--secure-port={port}", "--insecure-port=0",
        "--advertise-address=127.0.0.1", "--endpoint-reconciler-type=none",
        f"--cert-dir={workdir / 'tight-certs'}",
        f"--tls-cert-file={pki / 'apiserver.crt'}", f"--tls-private-key-file={pki / 'apiserver.key'}",
        f"--client-ca-file={pki / 'ca.crt'}", f"--token-auth-file={pki / 'tokens.csv'}",
        f"--service-account-issuer={ISSUER}", f"--api-audiences={ISSUER}",
        f"--service-account-key-file={pki / 'sa.pub'}", f"--service-account-signing-key-file={pki / 'sa.key'}",
        "--authorization-mode=RBAC", "--service-cluster-ip-range=10.96.0.0/16",
        f"--enable-admission-plugins={ADMISSION}", "--allow-privileged=true", "--profiling=false",
        f"--max-requests-inflight={max_inflight}", f"--max-mutating-requests-inflight={max_mutating}",
        f"--enable-priority-and-fairness={'true' if apf else 'false'}",
    ]  # fmt: skip
    with log.open("ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = TightApiServer(kas, port, process, log, apf)
    admin = yaml.safe_load(kas.admin_kubeconfig.read_text())
    for cluster in admin["clusters"]:
        cluster["cluster"]["server"] = server.url
    server.kubeconfig.write_text(yaml.safe_dump(admin))
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the tight kube-apiserver exited: {log.read_text()[-2000:]}")
        try:
            client = server.admin()
            try:
                if client.request("GET", "/readyz", headers={"Accept": "text/plain"}) == "ok":
                    return server
            finally:
                client.close()
        except KubeApiError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"the tight kube-apiserver did not become ready: {log.read_text()[-2000:]}")
        time.sleep(0.5)
