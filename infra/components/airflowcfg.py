"""airflow.cfg as published: the executor's part plus the control-plane settings infra owns.

The executor's part (``[core] executor``, ``[core] execution_api_server_url`` - the api-server
Service's in-cluster URL, :func:`execution_api_url` - ``[kubernetes_executor]``, tiers) is
rendered by the executor's own
:func:`~airflow_k8s.executor.contract.config_render.render_config`; this module adds what only the
platform knows and merges both into one file (one ``[core]`` section: Airflow's and the
executor's parsers both refuse a duplicate section).  :func:`publish` proves the result still
loads back to the same ``ExecutorConfig``.

Settings infra owns, and why:

* ``[core] dags_folder`` - where the DAGs claim is mounted (dag-processor, triggerer, task pods);
  ``load_examples = False`` - a platform runs its own DAGs;
* ``[core] hostname_callable = airflow.utils.net.get_host_ip_address`` - a Deployment's pod
  name is not resolvable in cluster DNS, its IP is: the api-server fetches a deferred task's log
  from the triggerer's log server at the hostname the triggerer recorded;
* ``[core] simple_auth_manager_passwords_file`` under ``/tmp``: Airflow's default auth manager
  writes the generated UI passwords there (the root filesystem is read-only; the password is in
  the api-server's log - production stacks configure a real auth manager);
* ``[api] base_url`` - the URL users reach the UI at (``apiBaseUrl``, else the Service's
  in-cluster URL), ``[api] port``;
* ``[scheduler] enable_health_check`` on port 8974 - the scheduler's liveness/readiness probe;
* ``[logging]`` - ``base_log_folder`` (an emptyDir) and, when ``remoteBaseLogFolder`` is set,
  ``remote_logging``, ``remote_base_log_folder``, ``remote_log_conn_id``, ``delete_local_logs``;
* ``[core] auth_manager`` (``authManager``) and, for the simple auth manager,
  ``simple_auth_manager_users = <adminUser>:admin`` (its password comes from the Secret);
* ``[metrics] statsd_*`` - the StatsD exporter's Service, when ``airflowMetrics`` is ``statsd``;
* Airflow's own throughput limits, from ``worker_pods_max`` (:func:`throughput_sections`), so the
  scheduler can hand the executor as many tasks as it may run: ``[core] parallelism`` (32),
  ``max_active_tasks_per_dag`` (16) and ``default_pool_task_slot_count`` (128, applied when
  ``airflow db migrate`` creates the default pool) = N_max; ``[scheduler] max_tis_per_query``
  (16 task instances queued per scheduler loop) = min(N_max, 512).  With several schedulers,
  ``parallelism`` and ``max_tis_per_query`` follow each scheduler's share, while the pool and the
  per-DAG limit - counted in the database across every scheduler - get the platform's total.

Never here: ``[database] sql_alchemy_conn``, ``[core] fernet_key``, ``[api_auth] jwt_secret``,
``[api] secret_key`` - those reach the control plane only as env vars from the platform Secret
(:data:`FORBIDDEN`; :func:`publish` refuses them).  Every key written here exists in Airflow
3.3.2 (:data:`AIRFLOW_KEYS`, checked against ``airflow config list --defaults``): Airflow ignores
unknown keys silently, so a typo would otherwise go unnoticed.
"""

from __future__ import annotations

import configparser
from dataclasses import dataclass, field

from airflow_k8s.executor.contract.config import ExecutorConfig
from airflow_k8s.executor.contract.config_loader import parse_config
from airflow_k8s.executor.contract.config_render import render_config
from airflow_k8s.executor.contract.errors import ConfigError
from airflow_k8s.infra.config.args import LoggingSpec

AIRFLOW_HOME = "/opt/airflow"
DAGS_FOLDER = f"{AIRFLOW_HOME}/dags"
LOGS_FOLDER = f"{AIRFLOW_HOME}/logs"
API_PORT = 8080
SCHEDULER_HEALTH_PORT = 8974
TRIGGERER_LOG_PORT = 8794
STATSD_PORT = 9125  # the StatsD exporter's UDP ingest port
EXECUTION_API_PATH = "/execution/"
SIMPLE_AUTH_PASSWORDS = "/tmp/simple_auth_manager_passwords.json.generated"  # noqa: S108 - an emptyDir
# The api-server's admin-password init container (podoptions.py): the simple auth manager's passwords file,
# from env (the Secret), created 0600 - the manager then finds its Admin and generates nothing.
WRITE_PASSWORDS_SCRIPT = (
    "import json, os\n"
    "fd = os.open(os.environ['PASSWORDS_FILE'], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)\n"
    "with os.fdopen(fd, 'w') as f:\n"
    "    json.dump({os.environ['ADMIN_USER']: os.environ['ADMIN_PASSWORD']}, f)\n"
)

# (section, key) pairs of Airflow 3.3.2 this module may write (``airflow config list --defaults``).
AIRFLOW_KEYS = frozenset(
    {
        ("core", "dags_folder"),
        ("core", "load_examples"),
        ("core", "hostname_callable"),
        ("core", "simple_auth_manager_passwords_file"),
        ("api", "base_url"),
        ("api", "port"),
        ("api", "expose_config"),
        ("scheduler", "enable_health_check"),
        ("scheduler", "scheduler_health_check_server_port"),
        ("logging", "base_log_folder"),
        ("logging", "trigger_log_server_port"),
        ("logging", "remote_logging"),
        ("logging", "remote_base_log_folder"),
        ("logging", "remote_log_conn_id"),
        ("logging", "delete_local_logs"),
        ("core", "auth_manager"),
        ("core", "simple_auth_manager_users"),
        ("metrics", "statsd_on"),
        ("metrics", "statsd_host"),
        ("metrics", "statsd_port"),
        ("metrics", "statsd_prefix"),
        ("core", "parallelism"),
        ("core", "max_active_tasks_per_dag"),
        ("core", "default_pool_task_slot_count"),
        ("scheduler", "max_tis_per_query"),
    }
)
MAX_TIS_PER_QUERY = 512  # bigger batches make each scheduler loop's queries long
FORBIDDEN = frozenset(
    {
        ("database", "sql_alchemy_conn"),
        ("core", "fernet_key"),
        ("api_auth", "jwt_secret"),
        ("api", "secret_key"),
    }
)


def api_server_url(service: str, namespace: str) -> str:
    """The api-server Service's in-cluster URL (no trailing slash)."""
    return f"http://{service}.{namespace}.svc.cluster.local:{API_PORT}"


def execution_api_url(service: str, namespace: str) -> str:
    """``[core] execution_api_server_url``: what task pods call, straight to the Service."""
    return api_server_url(service, namespace) + EXECUTION_API_PATH


@dataclass(frozen=True)
class ControlPlaneSettings:
    """What the platform decides in airflow.cfg besides the executor's own section.

    ``dags_folder``: the DAGs claim's mount, or git-sync's checkout inside it.  ``auth_manager``: its
    class path; ``admin_user`` is the simple auth manager's one Admin (None for other managers).
    ``statsd_host``: the StatsD exporter's Service (None: Airflow's metrics off).
    """

    base_url: str
    logging: LoggingSpec = field(default_factory=LoggingSpec)
    dags_folder: str = DAGS_FOLDER
    auth_manager: str | None = None
    admin_user: str | None = None
    statsd_host: str | None = None
    schedulers: int = 1  # schedulerReplicas: the database-wide limits count every scheduler's pods


def control_plane_sections(settings: ControlPlaneSettings) -> dict[str, dict[str, str]]:
    """section -> key -> value of the platform's settings (module docstring)."""
    logging = {"base_log_folder": LOGS_FOLDER, "trigger_log_server_port": str(TRIGGERER_LOG_PORT)}
    if settings.logging.remote:
        logging.update(
            remote_logging="True",
            remote_base_log_folder=settings.logging.remote_base_log_folder,
            remote_log_conn_id=settings.logging.remote_log_conn_id,
            delete_local_logs="True",  # the local copy is an emptyDir anyway
        )
    else:
        logging["remote_logging"] = "False"
    core = {
        "dags_folder": settings.dags_folder,
        "load_examples": "False",
        "hostname_callable": "airflow.utils.net.get_host_ip_address",
        # the default auth manager writes its generated passwords file; the root FS is read-only
        "simple_auth_manager_passwords_file": SIMPLE_AUTH_PASSWORDS,
    }
    if settings.auth_manager:
        core["auth_manager"] = settings.auth_manager
    if settings.admin_user:
        core["simple_auth_manager_users"] = f"{settings.admin_user}:admin"
    sections = {
        "core": core,
        "api": {"base_url": settings.base_url, "port": str(API_PORT), "expose_config": "False"},
        "scheduler": {
            "enable_health_check": "True",
            "scheduler_health_check_server_port": str(SCHEDULER_HEALTH_PORT),
        },
        "logging": logging,
    }
    if settings.statsd_host:
        sections["metrics"] = {
            "statsd_on": "True",
            "statsd_host": settings.statsd_host,
            "statsd_port": str(STATSD_PORT),
            "statsd_prefix": "airflow",
        }
    return sections


def throughput_sections(worker_pods_max: int, schedulers: int = 1) -> dict[str, dict[str, str]]:
    """Airflow's throughput limits raised to what the executor may run (module docstring).

    ``worker_pods_max`` is one scheduler's (``parallelism`` and ``max_tis_per_query`` are per
    scheduler); the default pool and ``max_active_tasks_per_dag`` are counted in the database across
    every scheduler, so they get the platform's total, ``schedulers x worker_pods_max``.
    """
    n_max, total = str(worker_pods_max), str(worker_pods_max * schedulers)
    return {
        "core": {"parallelism": n_max, "max_active_tasks_per_dag": total, "default_pool_task_slot_count": total},
        "scheduler": {"max_tis_per_query": str(min(worker_pods_max, MAX_TIS_PER_QUERY))},
    }


def merge(executor_text: str, sections: dict[str, dict[str, str]]) -> str:
    """``executor_text`` with ``sections`` added: keys of an existing section go at its end."""
    lines = executor_text.rstrip("\n").split("\n")
    pending = {name: dict(values) for name, values in sections.items()}
    out: list[str] = []
    current: str | None = None

    def flush(section: str | None) -> None:
        if section in pending:
            # before the blank lines that end the section
            trailing = []
            while out and not out[-1].strip():
                trailing.append(out.pop())
            out.extend(f"{key} = {value}" for key, value in pending.pop(section).items())
            out.extend(trailing)

    for line in lines:
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            flush(current)
            current = stripped[1:-1]
        out.append(line)
    flush(current)
    for name, values in pending.items():
        out.extend(["", f"[{name}]", *(f"{key} = {value}" for key, value in values.items())])
    return "\n".join(out) + "\n"


def publish(config: ExecutorConfig, settings: ControlPlaneSettings) -> str:
    """The airflow.cfg text of the ConfigMap; raises :class:`ConfigError` if it is not sound."""
    sections = control_plane_sections(settings)
    for section, values in throughput_sections(config.worker_pods_max, settings.schedulers).items():
        sections.setdefault(section, {}).update(values)
    for section, values in sections.items():
        for key in values:
            if (section, key) in FORBIDDEN or (section, key) not in AIRFLOW_KEYS:
                raise ConfigError(f"infra may not write [{section}] {key} to airflow.cfg", source="infra")
    text = merge(render_config(config), sections)
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    try:
        parser.read_string(text, source="airflow.cfg (published)")
    except configparser.Error as exc:
        raise ConfigError(f"published airflow.cfg is not valid INI: {exc}", source="infra") from exc
    for section, key in FORBIDDEN:
        if parser.has_option(section, key):
            raise ConfigError(f"published airflow.cfg holds the secret setting [{section}] {key}", source="infra")
    if parse_config(text, source="airflow.cfg (published)", environ={}) != config:
        raise ConfigError("published airflow.cfg does not load back to the same configuration", source="infra")
    return text
