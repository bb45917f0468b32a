"""The reference for the figures: Airflow with the cncf-kubernetes provider's ``KubernetesExecutor``, on the same
cluster, the same image, the same Postgres (a database of its own), the same DAG files.

A plain, hand-written deployment (this is a measuring harness, not the platform): namespace
``airflow-k8s-provider``; a migration Job; an api-server (Execution API + REST API, Service ``provider-api-server``),
a dag-processor and a scheduler with ``[core] executor = KubernetesExecutor`` at the provider's defaults, each at the
platform's control-plane requests (100m CPU) and PriorityClass, configured through ``AIRFLOW__*`` variables;
the scheduler's ServiceAccount may manage pods in its namespace.  Task pods come from a template with the
platform default template's resources (500m/1Gi, limits 1/2Gi), so both executors compete for the same node the
same way.
The DAGs are the tier's DAG directory, mounted read-only by hostPath.  Task logs go to the same S3 store
(its own prefix, the same connection, added through its REST API) as the platform's: both task pods upload
their log when the task ends, so start-to-end times compare like for like.
"""

from __future__ import annotations

import base64
import secrets
from pathlib import Path
from typing import Any

import yaml

from tests.realcluster.kit import Kit, wait_for
from tests.realcluster.stack import DB_NAMESPACE

NAMESPACE = "airflow-k8s-provider"
SERVICE = "provider-api-server"
LOG_CONNECTION = "aws_logs"  # the platform's remoteLogConnId in the tier (workload.LOGS_CONNECTION)
ACCOUNT = "provider-scheduler"
CONTROL_PLANE_PRIORITY_CLASS = "airflow-control-plane"  # the platform's (same cluster): equal footing
RESOURCES = {"requests": {"cpu": "100m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}}
TASK_RESOURCES = {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}}
RESTRICTED = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
POD_SECURITY = {"runAsNonRoot": True, "runAsUser": 50000, "runAsGroup": 0, "seccompProfile": {"type": "RuntimeDefault"}}


def create_database(kit: Kit, name: str = "airflow_provider") -> None:
    pod = kit.items("pods", DB_NAMESPACE, "app=postgres")[0]["metadata"]["name"]
    sql = f"SELECT 'CREATE DATABASE {name}' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{name}')\\gexec"  # noqa: S608 - a fixed name
    kit.kubectl("exec", pod, "-n", DB_NAMESPACE, "--", "sh", "-c",
                f'echo "{sql}" | PGPASSWORD="$POSTGRES_PASSWORD" psql -h 127.0.0.1 -U airflow -d postgres')  # fmt: skip


def logging_env(log_folder: str) -> list[dict[str, str]]:
    """Remote task logs as the platform's ``remoteBaseLogFolder``/``remoteLogConnId`` set them."""
    return [
        {"name": "AIRFLOW__LOGGING__REMOTE_LOGGING", "value": "True"},
        {"name": "AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER", "value": log_folder},
        {"name": "AIRFLOW__LOGGING__REMOTE_LOG_CONN_ID", "value": LOG_CONNECTION},
    ]


def worker_template(image: str, log_folder: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "provider-worker", "labels": {"app": "provider-worker"}},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "securityContext": POD_SECURITY,
            "containers": [
                {
                    "name": "base",
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "env": [
                        {"name": "AIRFLOW__CORE__EXECUTION_API_SERVER_URL", "value": execution_api_url()},
                        {"name": "AIRFLOW__CORE__DAGS_FOLDER", "value": "/opt/airflow/dags"},
                        *logging_env(log_folder),
                    ],
                    "resources": TASK_RESOURCES,
                    "securityContext": RESTRICTED,
                    "volumeMounts": [{"name": "dags", "mountPath": "/opt/airflow/dags", "readOnly": True}],
                }
            ],
            "volumes": [{"name": "dags", "hostPath": {"path": "__DAGS__", "type": "Directory"}}],
        },
    }


def execution_api_url() -> str:
    return f"http://{SERVICE}.{NAMESPACE}.svc.cluster.local:8080/execution/"


def objects(image: str, dags: Path, database_url: str, log_folder: str) -> list[dict[str, Any]]:
    repository, tag = image.rsplit(":", 1)
    template = yaml.safe_dump(worker_template(image, log_folder)).replace("__DAGS__", str(dags))
    secret_values = {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url,
        "AIRFLOW__CORE__FERNET_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
    }
    settings = {
        "AIRFLOW_HOME": "/opt/airflow",
        "AIRFLOW__CORE__EXECUTOR": "KubernetesExecutor",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": "/opt/airflow/dags",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": execution_api_url(),
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "airflow.utils.net.get_host_ip_address",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": "/tmp/simple_auth_manager_passwords.json.generated",
        "AIRFLOW__KUBERNETES_EXECUTOR__NAMESPACE": NAMESPACE,
        "AIRFLOW__KUBERNETES_EXECUTOR__POD_TEMPLATE_FILE": "/opt/airflow/pod_templates/worker.yaml",
        "AIRFLOW__KUBERNETES_EXECUTOR__WORKER_CONTAINER_REPOSITORY": repository,
        "AIRFLOW__KUBERNETES_EXECUTOR__WORKER_CONTAINER_TAG": tag,
        "AIRFLOW__KUBERNETES_EXECUTOR__DELETE_WORKER_PODS": "False",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
    }
    env = [{"name": k, "value": v} for k, v in settings.items()] + logging_env(log_folder)
    env += [{"name": k, "valueFrom": {"secretKeyRef": {"name": "provider", "key": k}}} for k in secret_values]

    def pod(
        role: str, args: list[str], *, account: str = ACCOUNT, extra: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return {
            "serviceAccountName": account,
            "priorityClassName": CONTROL_PLANE_PRIORITY_CLASS,  # as the platform's: no task preempts it
            "securityContext": POD_SECURITY,
            "containers": [
                {
                    "name": role,
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "args": args,
                    "env": env,
                    "resources": RESOURCES,
                    "securityContext": RESTRICTED,
                    "volumeMounts": [
                        {"name": "dags", "mountPath": "/opt/airflow/dags", "readOnly": True},
                        {"name": "templates", "mountPath": "/opt/airflow/pod_templates", "readOnly": True},
                    ],
                    **(extra or {}),
                }
            ],
            "volumes": [
                {"name": "dags", "hostPath": {"path": str(dags), "type": "Directory"}},
                {"name": "templates", "configMap": {"name": "provider-templates"}},
            ],
        }

    def deployment(role: str, args: list[str], **kwargs: Any) -> dict[str, Any]:
        labels = {"app.kubernetes.io/component": role, "app": f"provider-{role}"}
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": f"provider-{role}", "namespace": NAMESPACE},
            "spec": {
                "replicas": 1,
                "strategy": {"type": "Recreate"},
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": pod(role, args, **kwargs)},
            },
        }

    migrate = pod("migrate", ["airflow", "db", "migrate"])
    migrate["restartPolicy"] = "Never"
    api_probe = {"readinessProbe": {"httpGet": {"path": "/api/v2/monitor/health", "port": 8080}, "periodSeconds": 5}}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": ACCOUNT, "namespace": NAMESPACE}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": ACCOUNT, "namespace": NAMESPACE},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["pods"],
                    "verbs": ["create", "get", "list", "watch", "patch", "delete"],
                },
                {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
                {"apiGroups": [""], "resources": ["events"], "verbs": ["list"]},
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": ACCOUNT, "namespace": NAMESPACE},
            "subjects": [{"kind": "ServiceAccount", "name": ACCOUNT, "namespace": NAMESPACE}],
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ACCOUNT},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "provider", "namespace": NAMESPACE},
            "stringData": secret_values,
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "provider-templates", "namespace": NAMESPACE},
            "data": {"worker.yaml": template},
        },
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "provider-migrate", "namespace": NAMESPACE},
            "spec": {"backoffLimit": 2, "template": {"spec": migrate}},
        },
        deployment("api-server", ["airflow", "api-server", "--port", "8080"], extra=api_probe),
        deployment("dag-processor", ["airflow", "dag-processor"]),
        deployment("scheduler", ["airflow", "scheduler"]),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": SERVICE, "namespace": NAMESPACE},
            "spec": {"selector": {"app": "provider-api-server"}, "ports": [{"port": 8080, "targetPort": 8080}]},
        },
    ]


def deploy(kit: Kit, image: str, dags: Path, database_url: str, log_folder: str) -> None:
    create_database(kit)
    url = database_url.rsplit("/", 1)[0] + "/airflow_provider"
    found = objects(image, dags, url, log_folder)
    kit.apply_objects([o for o in found if o["kind"] not in ("Deployment", "Service")])

    def migrated() -> bool:
        status = kit.get("job", "provider-migrate", NAMESPACE).get("status") or {}
        if status.get("failed", 0) > 2:
            raise RuntimeError("the provider stack's migration failed")
        return status.get("succeeded") == 1

    wait_for(migrated, what="the provider stack's migration", timeout=1500, period=5)
    kit.apply_objects([o for o in found if o["kind"] in ("Deployment", "Service")])
    for role in ("api-server", "dag-processor", "scheduler"):
        wait_for(
            lambda role=role: (
                kit.get("deployment", f"provider-{role}", NAMESPACE).get("status", {}).get("readyReplicas")
            ),
            what=f"provider-{role} ready",
            timeout=1500,
            period=5,
        )


def remove(kit: Kit) -> None:
    kit.kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true", timeout=900)
