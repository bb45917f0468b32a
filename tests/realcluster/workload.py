"""What the tier puts around the platform on its single 2-core node: templates, DAGs, the DAGs volume, the database.

**Single-node pod templates.**  The shipped templates place each tier on its own pool: ``default``/``light`` on
``node-type: worker`` (taint ``dedicated=worker``), ``heavy`` on ``node-type: compute-optimized`` (taint
``workload=heavy``), ``gpu`` on ``node-type: gpu``.  One node can carry only one ``node-type``, and a tainted
node would also repel the control plane and Postgres, which share it here.  :func:`single_node_templates`
therefore copies every shipped template unchanged except its placement - ``spec.nodeSelector`` and
``spec.tolerations`` become the workers pool's, as the default template has them (the platform's preflight
checks that every template fits a pool) - and :func:`label_node` labels the node ``node-type: worker`` without
the pool's taint.  The stack's ``podTemplatesDir`` points at the copies.

**Seed DAGs.**  ``examples/dags`` are copied verbatim, with one exception: ``custom_pod_dag``'s
``heavy_computation`` asks for ``requests: cpu 2`` - the whole node, which also runs the control plane - so no
2-core node can ever schedule it.  :func:`seed_dags` scales exactly that block (requests 500m/1Gi, limits
1/2Gi) and fails if the seed DAG no longer contains it, so the copy cannot drift from the seed silently.

**The tier's own DAGs** (``tests/realcluster/dags``) hold tasks until the test releases them through an Airflow
Variable (read by the task through the Execution API, the only thing a task may reach), probe their own
container's hardening, and overrun an ``execution_timeout``.

**Task logs after the pod.**  Airflow reads a finished task's log from remote storage only (the executor is
asked only while the task runs), so the tier runs an S3-compatible server (moto, :func:`start_log_store`) and
the stack sets ``remoteBaseLogFolder``/``remoteLogConnId`` as a user's S3 setup would; the connection
(endpoint URL, throwaway keys) is created through Airflow's REST API.

**Storage and database.**  A hostPath PersistentVolume of the tier's storage class, pre-bound to the platform's
DAGs claim, over a host directory holding the DAGs (the only hostPath anywhere: created by the tier, never by
the platform).  Postgres 15 (the kit's image) in its own namespace, with a password, behind a Service.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from tests.realcluster.kit import BRIDGE_PREFIX, KIT_POSTGRES_IMAGE, ROOT, Kit, wait_for
from tests.realcluster.stack import DAGS_STORAGE_CLASS, DB_NAMESPACE

HERE = Path(__file__).resolve().parent
POOL_LABELS = {"node-type": "worker"}
NODE = "kc-node"
HEAVY_SEED = 'resources={"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"cpu": "4", "memory": "8Gi"}},'
HEAVY_TIER = 'resources={"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}},'
HEAVY_RESOURCES = ({"cpu": "500m", "memory": "1Gi"}, {"cpu": "1", "memory": "2Gi"})


def single_node_templates(target: Path, source: Path = ROOT / "pod_templates") -> Path:
    """Copies of the shipped templates placed on the single node (module docstring)."""
    target.mkdir(parents=True, exist_ok=True)
    workers = yaml.safe_load((source / "default_template.yaml").read_text())["spec"]
    assert workers["nodeSelector"] == POOL_LABELS, "the default template no longer targets the workers pool"
    for path in sorted(source.glob("*.yaml")):
        pod = yaml.safe_load(path.read_text())
        pod["spec"]["nodeSelector"] = dict(workers["nodeSelector"])
        pod["spec"]["tolerations"] = list(workers["tolerations"])
        header = f"# tier copy of pod_templates/{path.name}: placement -> the workers pool (the single node)\n"
        (target / path.name).write_text(header + yaml.safe_dump(pod, sort_keys=False))
    return target


def seed_dags(target: Path) -> list[str]:
    """``examples/dags`` into ``target`` (heavy_computation scaled to a 2-core node); returns the DAG files."""
    target.mkdir(parents=True, exist_ok=True)
    names = []
    for path in sorted((ROOT / "examples" / "dags").glob("*.py")):
        text = path.read_text()
        if path.name == "custom_pod_dag.py":
            if text.count(HEAVY_SEED) != 1:
                raise AssertionError(
                    f"{path}: heavy_computation's resources changed; update tests/realcluster/workload.py"
                )
            text = text.replace(HEAVY_SEED, HEAVY_TIER)
        (target / path.name).write_text(text)
        names.append(path.name)
    for path in sorted((HERE / "dags").glob("*.py")):
        shutil.copy(path, target / path.name)
        names.append(path.name)
    for path in [target, *target.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)  # the pods run as UID 50000: world-readable
    return names


def label_node(kit: Kit) -> None:
    """The single node joins the tier's one pool (labels only: a taint would repel the control plane)."""
    kit.kubectl("label", "node", NODE, "--overwrite", *(f"{k}={v}" for k, v in POOL_LABELS.items()))


def unlabel_node(kit: Kit) -> None:
    kit.kubectl("label", "node", NODE, *(f"{k}-" for k in POOL_LABELS), check=False)


def dags_volume(name: str, host_dir: Path, namespace: str, claim: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "airflow-k8s-realcluster"}},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteMany", "ReadOnlyMany", "ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": DAGS_STORAGE_CLASS,
            "claimRef": {"namespace": namespace, "name": claim},
            "hostPath": {"path": str(host_dir), "type": "Directory"},
        },
    }


# -- the metadata database ----------------------------------------------------------------------------------------
POSTGRES_SCRIPT = """\
B=/usr/lib/postgresql/15/bin
printf '%s\\n' "$POSTGRES_PASSWORD" > /tmp/pw
$B/initdb -D /data/pg -U airflow --auth=scram-sha-256 --pwfile=/tmp/pw -E UTF8 >/dev/null
rm /tmp/pw
echo "host all all 0.0.0.0/0 scram-sha-256" >> /data/pg/pg_hba.conf
echo "CREATE DATABASE airflow;" | $B/postgres --single -D /data/pg postgres >/dev/null
exec $B/postgres -D /data/pg -c listen_addresses='*' -c unix_socket_directories=/tmp -c max_connections=200
"""


def postgres_objects(password: str) -> list[dict[str, Any]]:
    labels = {"app": "postgres"}
    restricted = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": DB_NAMESPACE}},
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "postgres", "namespace": DB_NAMESPACE},
            "stringData": {"password": password},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "postgres", "namespace": DB_NAMESPACE},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                        "containers": [
                            {
                                "name": "postgres",
                                "image": KIT_POSTGRES_IMAGE,
                                "imagePullPolicy": "Never",
                                "securityContext": restricted,
                                "resources": {
                                    "requests": {"cpu": "50m", "memory": "256Mi"},
                                    "limits": {"cpu": "1", "memory": "1Gi"},
                                },
                                "env": [
                                    {
                                        "name": "POSTGRES_PASSWORD",
                                        "valueFrom": {"secretKeyRef": {"name": "postgres", "key": "password"}},
                                    }
                                ],
                                "ports": [{"containerPort": 5432}],
                                "command": ["sh", "-ec", POSTGRES_SCRIPT],
                                "readinessProbe": {
                                    "exec": {"command": ["/usr/lib/postgresql/15/bin/pg_isready", "-h", "127.0.0.1"]},
                                    "periodSeconds": 3,
                                },
                                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                            }
                        ],
                        "volumes": [{"name": "data", "emptyDir": {}}],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "postgres", "namespace": DB_NAMESPACE},
            "spec": {"selector": labels, "ports": [{"port": 5432}]},
        },
    ]


def start_postgres(kit: Kit) -> str:
    """Postgres in the cluster; returns the database URL the control plane gets (a secret)."""
    password = secrets.token_urlsafe(18)
    if kit.exists("deployment", "postgres", DB_NAMESPACE):
        kit.kubectl("delete", "namespace", DB_NAMESPACE, "--wait=true", timeout=300)
    kit.apply_objects(postgres_objects(password))

    def ready() -> bool:
        deployment = kit.get("deployment", "postgres", DB_NAMESPACE)
        return deployment.get("status", {}).get("readyReplicas", 0) == 1

    wait_for(ready, what="Postgres to be ready", timeout=600)
    return f"postgresql+psycopg2://airflow:{password}@postgres.{DB_NAMESPACE}.svc.cluster.local:5432/airflow"


# -- the remote log store -----------------------------------------------------------------------------------------
LOGS_NAMESPACE = "airflow-k8s-logs"
LOGS_BUCKET = "airflow-logs"
LOGS_CONNECTION = "aws_logs"


def log_store_objects(image: str) -> list[dict[str, Any]]:
    labels = {"app": "s3-log-store"}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": LOGS_NAMESPACE}},
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "s3", "namespace": LOGS_NAMESPACE},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                        "containers": [
                            {
                                "name": "s3",
                                "image": image,
                                "imagePullPolicy": "IfNotPresent",
                                "command": ["/opt/moto/bin/moto_server", "-H", "0.0.0.0", "-p", "5000"],
                                "securityContext": {
                                    "allowPrivilegeEscalation": False,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                                "resources": {
                                    "requests": {"cpu": "20m", "memory": "128Mi"},
                                    "limits": {"cpu": "500m", "memory": "512Mi"},
                                },
                                "ports": [{"containerPort": 5000}],
                                "readinessProbe": {"tcpSocket": {"port": 5000}, "periodSeconds": 3},
                            }
                        ],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "s3", "namespace": LOGS_NAMESPACE},
            # 443: the port the platform's NetworkPolicy opens towards remoteLogCidr (plain HTTP here)
            "spec": {"selector": labels, "ports": [{"port": 443, "targetPort": 5000}]},
        },
    ]


def start_log_store(kit: Kit, image: str) -> str:
    """An S3-compatible server in the cluster with the log bucket; returns its in-cluster endpoint URL."""
    kit.apply_objects(log_store_objects(image))

    def address() -> str | None:
        pods = [p for p in kit.items("pods", LOGS_NAMESPACE, "app=s3-log-store") if p["status"].get("podIP")]
        ready = [
            p for p in pods if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"]["conditions"])
        ]
        return ready[0]["status"]["podIP"] if ready else None

    ip = wait_for(address, what="the S3 log store to be ready", timeout=600)
    assert ip.startswith(BRIDGE_PREFIX), ip
    request = urllib.request.Request(f"http://{ip}:5000/{LOGS_BUCKET}", method="PUT")
    with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310
        assert answer.status == 200, answer.status
    return f"http://s3.{LOGS_NAMESPACE}.svc.cluster.local:443"


def log_connection(endpoint: str) -> dict[str, Any]:
    """The Airflow connection the platform's ``remoteLogConnId`` names (throwaway keys: moto checks none)."""
    return {
        "connection_id": LOGS_CONNECTION,
        "conn_type": "aws",
        "login": "realcluster",
        "password": "realcluster-not-a-secret",
        "extra": json.dumps({"endpoint_url": endpoint, "region_name": "us-east-1"}),
    }


def redact(text: str, url: str) -> str:
    """``text`` without the database password (for failure messages)."""
    password = re.sub(r"^.*://[^:]+:([^@]+)@.*$", r"\1", url)
    return text.replace(password, "<redacted>")
