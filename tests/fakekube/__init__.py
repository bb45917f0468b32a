"""fakekube: a fake Kubernetes API server (standard library only) for tests and benchmarks.

Start one in-process with :class:`FakeKubeServer` (or the ``fake_kube`` pytest fixture from
:mod:`tests.fakekube.fixtures`), or out of process with ``python -m tests.fakekube --port 0``; talk to it with the
official ``kubernetes`` client over real HTTP.  See the module docstrings for the exact semantics modelled.

The defaults are kind; ``FakeKubeServer(strict=True)`` (:meth:`ClusterConfig.strict`) behaves like a real
kube-apiserver wherever the fake knows how, and ``FakeKubeServer(process_mode=ProcessMode(...))`` runs each pod's
container command as a local process.  ``README.md`` lists the knobs and what the fake still does not do.
"""

from .admission import Admission, pod_security_violations
from .behavior import ANNOTATION_PREFIX, OUTCOMES, Behavior, BehaviorPolicy, default_behavior
from .cluster import Cluster, wait_for
from .config import ClusterConfig
from .errors import ApiError
from .faults import FaultRule, Faults
from .nodes import DEFAULT_NODE, NodeSpec, Taint
from .processes import ProcessMode
from .quotas import Quotas
from .server import FakeKubeServer
from .stats import PodRecord, Stats
from .store import Store

__all__ = [
    "ANNOTATION_PREFIX",
    "DEFAULT_NODE",
    "OUTCOMES",
    "Admission",
    "ApiError",
    "Behavior",
    "BehaviorPolicy",
    "Cluster",
    "ClusterConfig",
    "FakeKubeServer",
    "FaultRule",
    "Faults",
    "NodeSpec",
    "PodRecord",
    "ProcessMode",
    "Quotas",
    "Stats",
    "Store",
    "Taint",
    "default_behavior",
    "pod_security_violations",
    "wait_for",
]
