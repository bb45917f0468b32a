"""Does the namespace ResourceQuota hold what the platform will run?  Checked before deploying.

A ResourceQuota on ``requests.*`` *and* ``limits.*`` charges every pod on both, and the API
server refuses a pod that would exceed any of them: a task pod refused there fails its task (or
waits until ``pod_creation_timeout``).  So at render/preflight time the quota must hold, for each
of ``requests.cpu``, ``requests.memory``, ``limits.cpu``, ``limits.memory`` and ``pods``:

* **task pods**: ``workerPodsMax`` pods of the largest tier a task can use, per resource.  A GPU
  tier can only run as many pods at once as the quota's GPUs allow (``quotaGpus // gpus per
  pod``; none when ``quotaGpus`` is 0, i.e. GPU tasks are not allowed), so the worst case is that
  many GPU pods plus the rest at the largest non-GPU tier, or all pods at the largest non-GPU
  tier, whichever is larger.  A tier without a limit gets the LimitRange default limit;
* **placeholders**: ``workerPodsMin`` pause pods, each with the default tier's requests as both
  requests and limits (:mod:`airflow_k8s.executor.engine.placeholders`);
* **several schedulers** (``schedulerReplicas`` k > 1): each caps its own pods at its share of
  N_max, rounded up, so the task pods above count ``k x share``; N_min stays the namespace's (the
  executor keeps it once);
* **image checks** (``imagePreflight``): the two check Jobs' pods, at their own small resources,
  since an ``up`` runs them while the old control plane and task pods still run;
* **control plane**: every container of each pod adds up - the role's own, the ``log-groomer``
  sidecar of long-running roles and the operator's sidecars; an init container counts when it asks
  for more than all of them: the schedulers (they roll without a surge pod), api-server (replicas + 1
  surge pod of its rolling update; the dag-processor's git-sync sidecar), the add-ons (the db-clean
  CronJob's pod, the StatsD exporter and its surge pod),
  dag-processor, triggerer (when enabled) and the migration Job's pod, each at its own requests
  and limits (their init containers use the same resources, so they add nothing).

:func:`quota_problems` returns one message per quota key that is too small, naming the stack key,
its value, the need and how it adds up.  Pure Python, no Pulumi.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from airflow_k8s.executor.contract import quantity
from airflow_k8s.executor.contract.config import DEFAULT_TIERS, Tier
from airflow_k8s.infra.config.args import ExecutorSettings, PlatformConfig

# quota key -> (stack key, resource, requests or limits)
QUOTA_KEYS = (
    ("requests.cpu", "quotaRequestsCpu", "cpu", "requests"),
    ("requests.memory", "quotaRequestsMemory", "memory", "requests"),
    ("limits.cpu", "quotaLimitsCpu", "cpu", "limits"),
    ("limits.memory", "quotaLimitsMemory", "memory", "limits"),
)
GROOMED_ROLES = ("scheduler", "apiServer", "dagProcessor", "triggerer")  # pods with a log-groomer sidecar
_GI = Decimal(1024**3)
_MI = Decimal(1024**2)


@dataclass(frozen=True)
class QuotaProblem:
    key: str  # the stack key, without the project prefix
    value: object
    reason: str


@dataclass(frozen=True)
class ControlPlanePod:
    role: str
    count: int
    requests: dict[str, Decimal]
    limits: dict[str, Decimal]


def control_plane_pods(config: PlatformConfig) -> list[ControlPlanePod]:
    """The control plane's pods at their most (a rolling api-server update adds one; schedulers roll
    without a surge pod, one at a time), and the image checks an ``up`` runs beside them."""
    cp = config.control_plane
    addons = config.addons
    counts = {
        "scheduler": cp.scheduler_replicas,
        "apiServer": cp.api_server_replicas + 1,
        "dagProcessor": 1,
        "triggerer": 1 if cp.triggerer else 0,
        "migration": 1,
    }
    pods = []
    for role, count in counts.items():
        if not count:
            continue
        requests, limits = pod_resources(config, role)
        pods.append(ControlPlanePod(role, count, requests, limits))
    if addons.db_clean.enabled:  # the migration Job's pod, on a schedule
        requests, limits = pod_resources(config, "migration", additions_of="dbClean")
        pods.append(ControlPlanePod("dbClean", 1, requests, limits))
    if addons.metrics.statsd:  # one replica, rolled with a surge pod
        statsd = addons.metrics.resources.to_k8s()
        pods.append(ControlPlanePod("statsd", 2, _amounts(statsd, "requests"), _amounts(statsd, "limits")))
    if config.image_preflight.enabled:  # one Job per image, while the old control plane and tasks still run
        check = config.image_preflight.resources.to_k8s()
        pods.append(ControlPlanePod("imageChecks", 2, _amounts(check, "requests"), _amounts(check, "limits")))
    return pods


def _amounts(resources: Mapping[str, Any], kind: str) -> dict[str, Decimal]:
    """An unstated amount counts 0 here: building the pod refuses such a container, naming its key."""
    values = resources.get(kind) or {}
    return {
        "cpu": quantity.cpu(values["cpu"]) if "cpu" in values else Decimal(0),
        "memory": quantity.memory(values["memory"]) if "memory" in values else Decimal(0),
    }


def pod_resources(
    config: PlatformConfig, role: str, additions_of: str | None = None
) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
    """(requests, limits) one pod of ``role`` is charged: its containers add up - the role's own, the
    log-groomer of long-running roles, the operator's sidecars - and an init container counts when it
    asks for more than all of them (Kubernetes' effective pod resources: max(sum(containers), init))."""
    main = config.control_plane.resources_of(role).to_k8s()
    additions = config.pods.for_role(additions_of or role)
    containers = [main, *(c.get("resources") or {} for c in additions.sidecars)]
    if role in GROOMED_ROLES and additions_of is None:
        containers.append(config.pods.logs.groomer.to_k8s())
    if role == "dagProcessor" and config.addons.git_sync.enabled:
        containers.append(config.addons.git_sync.resources.to_k8s())
    inits = [main, *(c.get("resources") or {} for c in additions.init_containers)]  # wait-for-migrations: main's
    out = []
    for kind in ("requests", "limits"):
        total = {r: sum((_amounts(c, kind)[r] for c in containers), Decimal(0)) for r in ("cpu", "memory")}
        for init in inits:
            total = {r: max(total[r], _amounts(init, kind)[r]) for r in total}
        out.append(total)
    return out[0], out[1]


def _tier_value(tier: Tier, resource: str, kind: str, config: PlatformConfig) -> Decimal:
    parse = quantity.cpu if resource == "cpu" else quantity.memory
    if kind == "requests":
        return parse(tier.requests()[resource])
    limit = tier.limits().get(resource)
    if limit is None:  # the LimitRange fills it in
        lr = config.limit_range
        limit = lr.default_cpu if resource == "cpu" else lr.default_memory
    return parse(limit)


def worker_pods(config: PlatformConfig, key: str) -> tuple[int, str]:
    """(pods, how) for ``workerPodsMax`` or ``workerPodsMin`` across every scheduler.

    Each of the ``schedulerReplicas`` schedulers caps its own task pods at its share of
    ``workerPodsMax`` (rounded up: :meth:`~airflow_k8s.infra.config.args.ExecutorSettings.per_scheduler`),
    so ``k`` schedulers may hold ``k x share`` at once - a little more than the key when it does not
    divide evenly.  The N_min placeholders are kept once for the namespace (by the keeper scheduler).
    """
    total = config.executor.worker_pods_max if key == "workerPodsMax" else config.executor.worker_pods_min
    k = config.control_plane.scheduler_replicas
    if k == 1 or key == "workerPodsMin":  # N_min is the namespace's: kept once, by one scheduler
        return total, f"{key} {total}"
    share = ExecutorSettings.per_scheduler(total, k)
    return k * share, f"schedulerReplicas {k} x {share} ({key} {total} shared)"


def _tasks(config: PlatformConfig, tiers: Iterable[Tier], resource: str, kind: str) -> tuple[Decimal, str]:
    """(amount, explanation) of ``workerPodsMax`` task pods at the worst tier mix."""
    n, n_text = worker_pods(config, "workerPodsMax")
    tiers = list(tiers)
    plain = [t for t in tiers if not t.gpu]
    base_tier = max(plain, key=lambda t: _tier_value(t, resource, kind, config))
    base = _tier_value(base_tier, resource, kind, config)
    best = (n * base, f"{n_text} x {_show(base, resource)} of tier {base_tier.name!r}")
    gpus = config.quota.gpus
    for tier in tiers:
        if not tier.gpu or tier.gpu > gpus:
            continue  # GPU tasks are not allowed by the quota: this tier never runs
        k = min(n, gpus // tier.gpu)
        value = _tier_value(tier, resource, kind, config)
        total = k * value + (n - k) * base
        if total > best[0]:
            best = (
                total,
                f"{k} x {_show(value, resource)} of tier {tier.name!r} (quotaGpus {gpus}) + "
                f"{n - k} x {_show(base, resource)} of tier {base_tier.name!r} ({n_text})",
            )
    return best


def demand(
    config: PlatformConfig, resource: str, kind: str, tiers: Iterable[Tier] = DEFAULT_TIERS
) -> tuple[Decimal, str]:
    """What ``kind`` (requests/limits) of ``resource`` the platform may use at once, and how."""
    tiers = tuple(tiers)
    tasks, tasks_text = _tasks(config, tiers, resource, kind)
    default = next(t for t in tiers if t.name == config.executor.default_tier)
    per_placeholder = _tier_value(default, resource, "requests", config)  # limits == requests
    n_min, n_min_text = worker_pods(config, "workerPodsMin")
    placeholders = n_min * per_placeholder
    pods = control_plane_pods(config)
    control = sum((p.count * getattr(p, kind)[resource] for p in pods), Decimal(0))
    control_text = ", ".join(f"{p.role} {p.count} x {_show(getattr(p, kind)[resource], resource)}" for p in pods)
    total = tasks + placeholders + control
    text = (
        f"task pods {_show(tasks, resource)} ({tasks_text}) + placeholders {_show(placeholders, resource)} "
        f"({n_min_text} x {_show(per_placeholder, resource)} of tier {default.name!r}) + "
        f"control plane {_show(control, resource)} ({control_text})"
    )
    return total, text


def pod_demand(config: PlatformConfig) -> tuple[int, str]:
    pods = control_plane_pods(config)
    control = sum(p.count for p in pods)
    n_max, n_max_text = worker_pods(config, "workerPodsMax")
    n_min, n_min_text = worker_pods(config, "workerPodsMin")
    text = f"{n_max_text} + {n_min_text} + control plane {control} ({', '.join(f'{p.role} {p.count}' for p in pods)})"
    return n_max + n_min + control, text


def quota_problems(config: PlatformConfig, tiers: Iterable[Tier] = DEFAULT_TIERS) -> list[QuotaProblem]:
    """One problem per quota key that cannot hold the platform (module docstring)."""
    tiers = tuple(tiers)
    hard = config.quota.hard()
    problems = []
    for quota_key, stack_key, resource, kind in QUOTA_KEYS:
        parse = quantity.cpu if resource == "cpu" else quantity.memory
        have = parse(hard[quota_key])
        need, text = demand(config, resource, kind, tiers)
        if need > have:
            problems.append(
                QuotaProblem(
                    stack_key,
                    hard[quota_key],
                    f"ResourceQuota {quota_key} {hard[quota_key]} cannot hold {_show(need, resource)} = {text}",
                )
            )
    need_pods, text = pod_demand(config)
    if need_pods > config.quota.pods:
        problems.append(
            QuotaProblem(
                "quotaPods", config.quota.pods, f"ResourceQuota pods {config.quota.pods} < {need_pods} = {text}"
            )
        )
    return problems


def _show(amount: Decimal, resource: str) -> str:
    """``2.5`` cores or ``36Gi`` / ``512Mi`` (exact, for messages)."""
    if resource == "cpu":
        return f"{amount.normalize():f}"
    if amount % _GI == 0:
        return f"{amount / _GI:f}Gi"
    if amount % _MI == 0:
        return f"{(amount / _MI).normalize():f}Mi"
    return f"{amount:f}"
