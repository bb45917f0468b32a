"""The Airflow 3 control plane's roles: command, credentials, API access, mounts, ports, probes.

==============  ================================  ===========  =====  ====  =====  ===============
role            command                           secrets      token  DAGs  tmpl.  probes
==============  ================================  ===========  =====  ====  =====  ===============
scheduler       ``airflow scheduler``             db, fernet,  yes    no    yes    ``/health`` on
                                                  jwt                               8974
api-server      ``airflow api-server``            db, fernet,  yes    no    no     ``/api/v2/
                                                  jwt, api key                      monitor/health``
dag-processor   ``airflow dag-processor``         db, fernet   no     yes   no     ``jobs check``
triggerer       ``airflow triggerer``             db, fernet,  no     yes   no     ``jobs check``
                                                  api key
db-migrate      ``airflow db migrate`` (Job)      db, fernet   no     no    no     -
==============  ================================  ===========  =====  ====  =====  ===============

* The scheduler runs this project's executor (``[core] executor`` in airflow.cfg) inside
  ``airflow scheduler``: it needs the pod templates, the Kubernetes API (its token) and the JWT
  secret that signs each task's workload token.  Its probe is Airflow's own health server
  (``[scheduler] enable_health_check``), which fails when the scheduler job stops heartbeating.
* The api-server serves the UI, the public API and the Execution API task pods call.  It checks
  task tokens (JWT secret), reads running task pods' logs through the executor's
  ``get_task_log`` (its token; the executor is constructed there only for that, loading no
  templates) and deferred tasks' logs from the triggerer's log server (``[api] secret_key`` signs
  those requests).
* The dag-processor parses the DAGs claim; the triggerer runs triggers (task code, so it gets
  the DAGs too) and serves their logs on 8794.  Both use Airflow's in-process Execution API and
  the database: no JWT secret, no Kubernetes API.  Their liveness is ``airflow jobs check
  --local`` (an exec probe: they serve no HTTP health endpoint), slow enough to be cheap.
* Startup probes give a cold start (image pull, DB connection, plugin import) five minutes
  before liveness applies; liveness then tolerates five missed checks.
"""

from __future__ import annotations

from typing import Any

from airflow_k8s.infra.components.airflowcfg import API_PORT, SCHEDULER_HEALTH_PORT, TRIGGERER_LOG_PORT
from airflow_k8s.infra.components.airflowpod import Role
from airflow_k8s.infra.components.names import API_SERVER, DAG_PROCESSOR, MIGRATION, SCHEDULER, TRIGGERER
from airflow_k8s.infra.components.secrets import API_SECRET_KEY, DATABASE_URL_KEY, FERNET_KEY_KEY, JWT_SECRET_KEY

METRICS_PORT_NAME = "metrics"
API_PORT_NAME = "api"
HEALTH_PORT_NAME = "health"
TRIGGERER_LOG_PORT_NAME = "trigger-logs"
API_HEALTH_PATH = "/api/v2/monitor/health"


def _http_probes(path: str, port: str) -> dict[str, dict[str, Any]]:
    get = {"httpGet": {"path": path, "port": port}}
    return {
        "startupProbe": {**get, "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 30},
        "livenessProbe": {**get, "periodSeconds": 30, "timeoutSeconds": 10, "failureThreshold": 5},
        "readinessProbe": {**get, "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 3},
    }


def _job_check_probes(job_type: str) -> dict[str, dict[str, Any]]:
    check = {"exec": {"command": ["airflow", "jobs", "check", "--job-type", job_type, "--local"]}}
    return {
        "startupProbe": {**check, "periodSeconds": 30, "timeoutSeconds": 60, "failureThreshold": 10},
        "livenessProbe": {**check, "periodSeconds": 60, "timeoutSeconds": 60, "failureThreshold": 5},
        # readiness: `pulumi up` waits for a ready pod, so a rollout is only done once the job heartbeats
        "readinessProbe": {**check, "periodSeconds": 60, "timeoutSeconds": 60, "failureThreshold": 3},
    }


def scheduler(metrics_port: int) -> Role:
    return Role(
        SCHEDULER,
        ("airflow", "scheduler"),
        (DATABASE_URL_KEY, FERNET_KEY_KEY, JWT_SECRET_KEY),
        token=True,
        templates=True,
        ports=((HEALTH_PORT_NAME, SCHEDULER_HEALTH_PORT), (METRICS_PORT_NAME, metrics_port)),
        probes=_http_probes("/health", HEALTH_PORT_NAME),
    )


def api_server() -> Role:
    return Role(
        API_SERVER,
        ("airflow", "api-server", "--port", str(API_PORT), "--proxy-headers"),
        (DATABASE_URL_KEY, FERNET_KEY_KEY, JWT_SECRET_KEY, API_SECRET_KEY),
        token=True,
        ports=((API_PORT_NAME, API_PORT),),
        probes=_http_probes(API_HEALTH_PATH, API_PORT_NAME),
    )


def dag_processor() -> Role:
    # templates: the executor's cluster policy (airflow.policy entry point) builds each task's pod from them
    # while parsing, so a DAG with an executor_config the executor would refuse shows as an import error.
    return Role(
        DAG_PROCESSOR,
        ("airflow", "dag-processor"),
        (DATABASE_URL_KEY, FERNET_KEY_KEY),
        dags=True,
        templates=True,
        probes=_job_check_probes("DagProcessorJob"),
    )


def triggerer() -> Role:
    return Role(
        TRIGGERER,
        ("airflow", "triggerer"),
        (DATABASE_URL_KEY, FERNET_KEY_KEY, API_SECRET_KEY),
        dags=True,
        ports=((TRIGGERER_LOG_PORT_NAME, TRIGGERER_LOG_PORT),),
        probes=_job_check_probes("TriggererJob"),
    )


def migration() -> Role:
    return Role(
        MIGRATION,
        ("airflow", "db", "migrate"),
        (DATABASE_URL_KEY, FERNET_KEY_KEY),
        wait_for_migrations=False,
        termination_grace_seconds=30,
    )
