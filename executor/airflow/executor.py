"""``KubernetesPlatformExecutor``: Airflow 3's executor interface over this project's engine.

Point Airflow at it with ``[core] executor = airflow_k8s.executor.airflow.KubernetesPlatformExecutor``.

How Airflow's calls map onto the engine (which runs in the scheduler process, on threads):

* ``queue_workload`` (BaseExecutor's) -> ``_process_workloads``: each ``ExecuteTask`` becomes a
  :class:`~airflow_k8s.executor.tasks.task.Task` (:mod:`.workloads`), is checked as the launcher
  will check it (:mod:`~airflow_k8s.executor.pods.preflight`: the pod it gets, the task pod
  policy, a request no node can hold) and joins a backlog; a task that fails the check fails at
  once with the reason - for DAGs parsed where the cluster policy (:mod:`.policy`) is not installed.
* Each workload is one *launch* of its try (a deferred task resumed, a rescheduled sensor's next
  poke are queued again with the same try number): its pod is named after the launch id Airflow's
  scheduler assigns (``pre_assigns_external_executor_id``), so it never meets the earlier launch's
  pod, and only the current launch's pod reports to Airflow.
* ``sync`` (every scheduler loop): report pods that started (``running``), finished
  (``success``) or failed (``failed``, with the pod's reason, exit code and last log lines as the
  event's info, also written into the try's log: :mod:`.reasons`); relaunch a pod that failed
  before its task started (Airflow's ``pod_launch_failure_retries``); then hand the engine as
  many backlog tasks as it has room for (and at most ``worker_pods_creation_batch_size`` when
  set), after one batched query drops workloads that went stale while waiting (:mod:`.instances`).
* a try Airflow hands back (a reschedule, a deferral resuming, or a loop nobody asked for) waits
  for its previous pod to end - whose outcome, now stale, is not reported - then gets a pod of its
  own (its launch's), and after ``unrequested_reschedule_limit`` returns without the task asking
  it fails with its pod's last log lines (:mod:`.reschedules`).
* ``try_adopt_task_instances``: after a scheduler restart, pods of the dead scheduler's job are
  found by their labels and task annotations, relabelled ``airflow-worker=<this job>`` (the
  engine's watch then follows them) and their task instances kept; no second pod is created.
  Outcomes the engine saw before Airflow asked are kept until then.
* ``get_task_log``: the pod's log while it exists (pod names are a function of the task key);
  ``revoke_task`` / ``cleanup_stuck_queued_tasks``: delete the pod, forget the task.
* ``end`` / ``terminate``: stop the engine's threads; running pods keep running and are adopted
  by the next scheduler (``end``, a clean stop, also deletes this scheduler's placeholders).

Several schedulers (Airflow 3 runs them active-active): each owns only its own pods; a task whose
pod another scheduler adopted (it took this one for dead) is handed over - dropped from
``running`` without an event, its pod left alone; N_min is kept once for the namespace, by the
oldest live scheduler (:mod:`.peers`, refreshed in ``sync``).

Only pods labelled ``airflow-worker=<this scheduler's job id>`` are this executor's.  The
provider's KubernetesExecutor reads the same ``[kubernetes_executor]`` section and labels its pods
the same way, so configuring both in one scheduler would make each act on the other's pods:
that is refused at start.  A provider executor in another scheduler only adopts *Succeeded* pods
of schedulers that are no longer alive - by then Airflow 3's task has reported its own state
through the Execution API, so nothing is lost (see docs/executor.md).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, ClassVar

from airflow.executors.base_executor import BaseExecutor, get_execution_api_server_url
from airflow.models.taskinstancekey import TaskInstanceKey

from airflow_k8s.executor.airflow import adoption, peers
from airflow_k8s.executor.airflow.instances import QUEUED, DatabaseInstances, TaskInstances
from airflow_k8s.executor.airflow.outcomes import Outcomes, airflow_key
from airflow_k8s.executor.airflow.reporting import Reporting
from airflow_k8s.executor.airflow.reschedules import RescheduleLoops
from airflow_k8s.executor.airflow.settings import load_settings
from airflow_k8s.executor.airflow.workloads import task_from_workload, task_key
from airflow_k8s.executor.contract.config import ExecutorConfig
from airflow_k8s.executor.contract.config_loader import EXECUTOR_CLASS_NAME, SECTION, executor_class_names
from airflow_k8s.executor.contract.errors import ConfigError, ExecutorError, KubeApiError, NotFound
from airflow_k8s.executor.engine.core import Engine, EngineOptions
from airflow_k8s.executor.engine.placeholders import WarmShare
from airflow_k8s.executor.engine.server import StatusServer
from airflow_k8s.executor.kube.client import KubeClient
from airflow_k8s.executor.pods import preflight
from airflow_k8s.executor.pods.templates import TemplateStore
from airflow_k8s.executor.tasks import identity
from airflow_k8s.executor.tasks.key import TaskKey
from airflow_k8s.executor.tasks.task import Task

log = logging.getLogger(__name__)
__all__ = ["KubernetesPlatformExecutor", "airflow_key"]


class KubernetesPlatformExecutor(Reporting, BaseExecutor):
    """Runs each Airflow task in its own pod through this project's engine (module docstring)."""

    supports_ad_hoc_ti_run: bool = True
    serve_logs: bool = False
    # Airflow assigns each queueing of a task instance a fresh external_executor_id, committed with the
    # queued state: the launch id that gives a resumed try its own pod (module docstring).
    pre_assigns_external_executor_id: ClassVar[bool] = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Constructing spawns nothing: the API server builds executors only to read task logs.
        super().__init__(*args, **kwargs)
        self.settings: ExecutorConfig | None = None
        self.engine: Engine | None = None
        self.kube: KubeClient | None = None
        self.instances: TaskInstances = DatabaseInstances()
        self.peers: peers.Peers = peers.DatabasePeers()
        self.peers_refresh = peers.REFRESH_SECONDS  # seconds between share refreshes while N_min > 0 (tests shorten)
        self._peers_due: float | None = None  # monotonic time of the next share refresh (None: never)
        self.outcomes = Outcomes()
        self._backlog: deque[tuple[TaskInstanceKey, Task]] = deque()
        self._tasks: dict[TaskKey, Task] = {}
        self.pods: dict[TaskKey, str] = {}  # the pod of each try's current launch (reports of others are stale)
        self._log_paths: dict[TaskKey, str] = {}  # each try's log path, for the failure reason (.reasons)
        self.log_folder: str | None = None
        self._preflight = preflight.VerdictCache()  # queue-time checks, once per distinct executor_config
        self._relaunches: Counter[TaskKey] = Counter()
        self.loops = RescheduleLoops(ExecutorConfig().unrequested_reschedule_limit)
        self._resumed: set[TaskKey] = set()  # tries handed back: replace their finished pod
        self._returning: dict[TaskKey, tuple[TaskInstanceKey, Task]] = {}  # handed back before their pod ended
        self._status: StatusServer | None = None
        self._log_client: KubeClient | None = None
        self.engine_options: EngineOptions | None = None  # the engine's timers (tests shorten them)

    # -- configuration -------------------------------------------------------------------------
    def load_settings(self) -> ExecutorConfig:
        """This executor's settings from Airflow's configuration (validated, cached)."""
        if self.settings is None:
            from airflow.configuration import conf

            self.settings = load_settings(conf, execution_api_server_url=get_execution_api_server_url(conf))
        return self.settings

    def _check_no_provider_executor(self, config: ExecutorConfig) -> None:
        if "KubernetesExecutor" in executor_class_names(config.executor):
            raise ConfigError(
                f"Airflow's KubernetesExecutor and {EXECUTOR_CLASS_NAME} read the same [kubernetes_executor] "
                "section and label pods alike, so each would act on the other's pods; use one of them",
                section="core",
                key="executor",
                value=config.executor,
            )

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        from airflow.configuration import conf
        from airflow.version import version as airflow_version

        config = self.load_settings()
        self._check_no_provider_executor(config)
        instance = identity.safe_label_value(str(self.job_id)) if self.job_id is not None else "unknown"
        config = self.settings = replace(config, scheduler_instance_id=instance, airflow_version=airflow_version)
        self.loops.limit = config.unrequested_reschedule_limit
        self.log_folder = conf.get("logging", "base_log_folder", fallback=None)
        templates = TemplateStore(config.pod_template_dir, logical_dir=config.pod_template_dir)
        problems = preflight.template_problems(config, templates)  # broken templates stop the scheduler here
        if problems:
            raise ConfigError(
                "the pod templates cannot be used:\n" + "\n".join(f"  - {p}" for p in problems),
                section=SECTION,
                key="pod_template_dir",
                value=config.pod_template_dir,
            )
        self.kube = KubeClient.from_config(config, pool_size=config.creation_workers() + 8)
        self.engine = Engine(
            config,
            templates,
            self.kube,
            sink=self.outcomes,
            on_running=self.outcomes.running,
            on_released=self.outcomes.released,
            options=self.engine_options,
        )
        if _job_number(self.job_id) is not None:  # inside a scheduler: no placeholders before the first share
            self.engine.share_warm_capacity(WarmShare(keeper=False))
            self._peers_due = 0.0
        self.engine.start()
        try:
            self._status = StatusServer(
                self.engine.metrics.registry,
                healthy=self.engine.healthy,
                ready=self.engine.ready,
                port=config.metrics_port,
            )
            self._status.start()
        except OSError as exc:
            log.warning("metrics endpoint not started on port %s: %s", config.metrics_port, exc)
            self._status = None
        log.info("%s started for scheduler job %s in %s", EXECUTOR_CLASS_NAME, self.job_id, config.namespaces())

    def end(self) -> None:
        """Stop the engine; task pods keep running and the next scheduler adopts them, placeholders go."""
        if self.engine is None:
            return
        try:
            self._report()
        finally:
            kube, self.kube = self.kube, None  # closed after the placeholders are gone
            self._shutdown()
            if kube is not None and self.settings is not None:
                peers.remove_own_placeholders(kube, self.settings)

    def terminate(self) -> None:
        self._shutdown()

    def _shutdown(self) -> None:
        if self.engine is not None:
            self.engine.stop()
            self.engine = None
        if self._status is not None:
            self._status.stop()
            self._status = None
        if self.kube is not None:
            self.kube.close()
            self.kube = None

    # -- Airflow -> engine ----------------------------------------------------------------------
    def _process_workloads(self, workloads: Sequence[Any]) -> None:
        from airflow.executors.workloads import ExecuteTask

        for workload in workloads:
            if not isinstance(workload, ExecuteTask):
                raise RuntimeError(f"{type(self).__name__} cannot run workloads of type {type(workload).__name__}")
            key = workload.ti.key
            self.queued_tasks.pop(key, None)
            self.running.add(key)
            try:
                ours = task_key(workload.ti)
            except ExecutorError as exc:  # an identity the executor cannot use (a run_id with a newline...)
                log.error("cannot run %s: %s", key, exc)
                self.fail(key, info=f"the executor cannot run this task: {exc}")
                continue
            if workload.log_path:
                self._log_paths[ours] = workload.log_path
            try:
                task = task_from_workload(workload)
                if self.engine is not None and self.settings is not None:
                    self._preflight.check(task, self.settings, self.engine.templates, self.engine.nodes)
            except ExecutorError as exc:
                log.error("cannot run %s: %s", key, exc)
                self._fail(ours, f"the executor cannot run this task: {exc}")
                continue
            if task.key in self._tasks:  # handed back while its pod still runs: decided when that pod ends
                self._returning[task.key] = (key, task)
                continue
            self._hand_over(key, task)

    def _hand_over(self, key: TaskInstanceKey, task: Task) -> None:
        """Into the backlog - unless the same try came back once too often without asking (:mod:`.reschedules`)."""
        decision = self.loops.returned(task.key)
        if decision.fail is not None:
            log.error("failing %s instead of launching it again: %s", key, decision.fail)
            self._fail(task.key, decision.fail)
            return
        if decision.resumed:
            self._resumed.add(task.key)
            task = dataclasses.replace(task, log_tail_on_success=decision.read_log)
        self._tasks[task.key] = task
        self.pods[task.key] = task.pod_name
        self._backlog.append((key, task))

    def sync(self) -> None:
        if self.engine is None:
            return
        self._report()
        self._share_warm_capacity()
        self._admit()

    def _share_warm_capacity(self) -> None:
        """Refresh this scheduler's part in N_min (:mod:`.peers`): at the first sync, then often while N_min > 0."""
        assert self.engine is not None and self.settings is not None and self.kube is not None
        own, now = _job_number(self.job_id), time.monotonic()
        if own is None or self._peers_due is None or now < self._peers_due:
            return
        warm = self.settings.worker_pods_min > 0
        self._peers_due = now + self.peers_refresh if warm else None
        try:
            peers.refresh(self.peers, self.engine, self.kube, self.settings, own_job=own, executor=peers.match(self))
        except Exception:
            log.exception("cannot read the other schedulers' state; keeping this scheduler's share of N_min")

    def _admit(self) -> None:
        """Give the engine what it has room for, after one query drops stale workloads."""
        assert self.engine is not None and self.settings is not None
        room = self.engine.free_slots()
        if self.settings.worker_pods_creation_batch_size is not None:
            room = min(room, self.settings.worker_pods_creation_batch_size)
        batch = [self._backlog.popleft() for _ in range(min(room, len(self._backlog)))]
        if not batch:
            return
        try:
            states = self.instances.current([task.ti_id for _, task in batch if task.ti_id])
        except Exception:
            log.exception("cannot check %d queued workloads against the database; will retry", len(batch))
            self._backlog.extendleft(reversed(batch))
            return
        job_id = _job_number(self.job_id)
        for key, task in batch:
            current = states.get(task.ti_id or "")
            stale = (
                current is None
                or current.state != QUEUED
                or current.try_number != task.key.try_number
                or (job_id is not None and current.queued_by_job_id != job_id)
            )
            if stale:
                log.info("dropping stale workload %s (task instance now: %s)", key, current)
                self.running.discard(key)
                self._forget(task.key)
                self._resumed.discard(task.key)
                continue
            resumed = task.key in self._resumed
            self._resumed.discard(task.key)
            self.engine.submit(task, relaunch=resumed)

    # -- adoption, revocation, logs ---------------------------------------------------------------
    def try_adopt_task_instances(self, tis: Sequence[Any]) -> Sequence[Any]:
        if self.engine is None or self.kube is None or self.settings is None:
            return tis
        self.engine.synced.wait(60)
        self._report()  # outcomes already seen are claimable now
        return adoption.adopt(self, tis)

    def revoke_task(self, *, ti: Any) -> None:
        key = ti.key
        ours = task_key(ti)
        self.running.discard(key)
        self.queued_tasks.pop(key, None)
        self._backlog = deque(item for item in self._backlog if item[0] != key)
        pod_name = self.pods.get(ours)
        self._forget(ours)
        self._resumed.discard(ours)
        self._returning.pop(ours, None)
        self.loops.forget(ours)
        if self.engine is not None:
            self.engine.revoke(ours, pod_name)

    def cleanup_stuck_queued_tasks(self, tis: list[Any]) -> list[str]:
        """Airflow 2's name for revoking tasks stuck in queued; kept for callers that still use it."""
        for ti in tis:
            self.revoke_task(ti=ti)
            self.fail(ti.key)
        return [repr(ti) for ti in tis]

    def get_task_log(self, ti: Any, try_number: int) -> tuple[list[str], list[str]]:
        """The pod's log while the pod exists (Airflow's UI shows it for running tasks)."""
        messages: list[str] = []
        try:
            config = self.load_settings()
            if self._log_client is None:
                self._log_client = KubeClient.from_config(config, pool_size=2)
            names = adoption.candidate_pod_names(task_key(ti, try_number), getattr(ti, "external_executor_id", None))
            for namespace in adoption.log_namespaces(ti, config):
                for name in names:
                    try:
                        text = self._log_client.read_pod_log(namespace, name, tail_lines=config.running_pod_log_lines)
                    except NotFound:
                        continue
                    messages.append(f"Found logs of pod {namespace}/{name} through the Kubernetes API")
                    return messages, [text]
            messages.append(f"Pod {names[0]} is gone (deleted when its task finished); see the task's remote logs")
        except (ExecutorError, KubeApiError) as exc:
            messages.append(f"Reading the pod's log failed: {exc}")
        return messages, [""]

    def debug_dump(self) -> None:
        super().debug_dump()
        if self.engine is not None:
            self.log.info("engine: %s; backlog %d", self.engine.snapshot(), len(self._backlog))


def _job_number(job_id: object) -> int | None:
    try:
        return int(str(job_id))
    except ValueError:
        return None
