"""Real-cluster tier: a task that reports, from inside its own container, what the kubelet enforced."""

import errno
import os
from datetime import datetime

from airflow.sdk import dag, task

TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def _writable(directory: str) -> str:
    path = os.path.join(directory, f".kc-probe-{os.getpid()}")
    try:
        with open(path, "w") as probe:
            probe.write("x")
    except OSError as exc:
        return errno.errorcode.get(exc.errno or 0, str(exc.errno))
    os.unlink(path)
    return "writable"


def _mount_options(mount_point: str) -> list[str]:
    with open("/proc/self/mountinfo") as mounts:
        lines = mounts.read().splitlines()
    for line in lines:
        fields = line.split()
        if fields[4] == mount_point:
            return fields[5].split(",")
    return []


@dag(schedule=None, start_date=datetime(2024, 1, 1), catchup=False, tags=["realcluster"])
def kc_hardening():
    @task(executor_config={"kubernetes_config": {"tier": "light"}})
    def probe():
        status = {}
        with open("/proc/self/status") as proc_status:
            lines = proc_status.read().splitlines()
        for line in lines:
            key, _, value = line.partition(":")
            status[key] = value.strip()
        return {
            "uid": os.getuid(),
            "euid": os.geteuid(),
            "gid": os.getgid(),
            "user": os.environ.get("USER") or __import__("pwd").getpwuid(os.getuid()).pw_name,
            "root": _writable("/"),
            "home": _writable(os.environ.get("AIRFLOW_HOME", "/opt/airflow")),
            "tmp": _writable("/tmp"),
            "logs": _writable("/opt/airflow/logs"),
            "root_mount": _mount_options("/"),
            "token_mounted": os.path.exists(TOKEN_DIR),
            "cap_eff": status.get("CapEff"),
            "cap_prm": status.get("CapPrm"),
            "cap_bnd": status.get("CapBnd"),
            "no_new_privs": status.get("NoNewPrivs"),
            "seccomp": status.get("Seccomp"),
            # names and values (a value that is not the Task SDK's own guard is reported as "<a value>")
            "secret_env": {
                k: v if v.startswith("airflow-db-not-allowed") else "<a value>"
                for k, v in os.environ.items()
                if "SQL_ALCHEMY" in k or "FERNET" in k or "JWT" in k or "SECRET_KEY" in k
            },
        }

    probe()


kc_hardening()
