"""PriorityClasses of task pods, of the N_min placeholder pods and of the control plane.

Placeholders reserve warm capacity: they run at a *negative* priority so any task pod (at the
task class's value, which must be >= 0; default 0, so task pods preempt nothing else - other
workloads of the cluster run at 0 too, and equal priority never preempts) preempts them the moment
it needs the room, and with
``preemptionPolicy: Never`` so a placeholder can never evict anything itself - not even another
placeholder or a pod of another namespace at priority 0.  Neither class is ``globalDefault``:
other workloads of the cluster keep their own priority.

Their names flow into airflow.cfg (``worker_priority_class``, ``placeholder_priority_class``).

The control plane (scheduler, api-server, dag-processor, triggerer, migration Job) gets a class of its
own at :data:`CONTROL_PLANE_PRIORITY`, the highest value a non-system class may have, with
``preemptionPolicy: Never``.  Without it the control plane runs at priority 0, below every task pod:
where they share nodes (untainted pools, a small cluster), a task pod that does not fit *preempts the
scheduler or the api-server* - found on a real single-node cluster, where a ``tier: auto`` task evicted
the whole control plane and then failed for want of the Execution API.  At the top value no task pod
(at most the same value) can preempt it, and ``Never`` keeps it from evicting running tasks in turn: a
control-plane pod that does not fit waits for room.

``value`` and ``preemptionPolicy`` are immutable in Kubernetes, and pulumi-kubernetes does not
know it (its replace list has no PriorityClass): a changed ``taskPriority`` would be sent as an
update and rejected.  So both fields are ``replace_on_changes``, and since the names are pinned
the old class is deleted before the new one is created (``delete_before_replace``; create-first
would collide on the name).  Running pods keep their resolved priority; a pod created in the
moment between delete and create is refused by admission and retried by the executor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from airflow_k8s.infra.components.k8s import TOKEN_PREFIX, child, metadata, name_of, raw
from airflow_k8s.infra.components.names import PlatformNames
from airflow_k8s.infra.config.args import PrioritySpec

CONTROL_PLANE_PRIORITY = 1_000_000_000  # the largest value of a non-system PriorityClass
IMMUTABLE: dict[str, Any] = {"replace_on_changes": ["value", "preemptionPolicy"], "delete_before_replace": True}


@dataclass(frozen=True)
class PriorityArgs:
    names: PlatformNames
    spec: PrioritySpec


class PriorityClasses(pulumi.ComponentResource):
    task_class: pulumi.Output[str]
    placeholder_class: pulumi.Output[str]
    control_plane_class: pulumi.Output[str]

    def __init__(self, name: str, args: PriorityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TOKEN_PREFIX}PriorityClasses", name, None, opts)
        labels = args.names.common_labels("priority")
        task = k8s.scheduling.v1.PriorityClass(
            f"{name}-task",
            metadata=raw(metadata(args.names.task_priority_class, None, labels)),
            value=args.spec.task_value,
            global_default=False,
            preemption_policy="PreemptLowerPriority",
            description="Airflow task pods of the Kubernetes executor; preempts the executor's placeholders.",
            opts=child(self, **IMMUTABLE),
        )
        placeholder = k8s.scheduling.v1.PriorityClass(
            f"{name}-placeholder",
            metadata=raw(metadata(args.names.placeholder_priority_class, None, labels)),
            value=args.spec.placeholder_value,
            global_default=False,
            preemption_policy="Never",
            description="N_min placeholder pods: warm capacity, preempted by any task pod, never preempt.",
            opts=child(self, **IMMUTABLE),
        )
        control_plane = k8s.scheduling.v1.PriorityClass(
            f"{name}-control-plane",
            metadata=raw(metadata(args.names.control_plane_priority_class, None, labels)),
            value=CONTROL_PLANE_PRIORITY,
            global_default=False,
            preemption_policy="Never",
            description="Airflow control plane: never preempted by task pods, never preempts them.",
            opts=child(self, **IMMUTABLE),
        )
        self.task_class = name_of(task)
        self.placeholder_class = name_of(placeholder)
        self.control_plane_class = name_of(control_plane)
        self.register_outputs(
            {
                "taskClass": self.task_class,
                "placeholderClass": self.placeholder_class,
                "controlPlaneClass": self.control_plane_class,
            }
        )
