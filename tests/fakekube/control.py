"""The ``/_fake/`` JSON control API, for driving the fake from another process (benchmarks, ``-m tests.fakekube``).

=================================================  ====================================================================
``GET  /_fake/healthz``                            ``ok``
``GET  /_fake/stats``                              request counts, pod records, duplicate creates, open watches, rv,
                                                   config, fault rules, internal error count
``POST /_fake/stats/reset``                        zero the counters and pod records
``GET|POST /_fake/config``                         read / change :class:`ClusterConfig` fields (``{"run_seconds": 1}``;
                                                   ``{"preset": "strict"}`` applies the strict preset first)
``GET|POST /_fake/nodes``                          list / set nodes: ``{"nodes": [NodeSpec...], "replace": true}``
``POST|DELETE /_fake/nodes/{name}``                patch ``{"labels":{}, "taints":[], "unschedulable":b}`` / remove
``GET|POST|DELETE /_fake/faults``                  list / add a :class:`FaultRule` (returns ``{"id": n}``) / clear
``DELETE /_fake/faults/{id}``                      remove one rule
``POST /_fake/compact``                            forget watch history (old resourceVersions -> 410)
``POST /_fake/history/age``                        ``{"seconds": 100}``: age the watch history (``history_seconds``)
``POST /_fake/restart``                            ``{"downtime": 1.0}``: a simulated apiserver restart (``restart.py``)
``POST /_fake/drop-watches``                       cut every open watch connection
``POST /_fake/expire-watches``                     send 410 ERROR on every open watch and end it
``POST /_fake/kubelet/{pause,resume,flush}``       control simulated time
``POST /_fake/pods/{ns}/{name}/step``              perform that pod's next transition now
``POST /_fake/pods/{ns}/{name}/complete``          ``{"outcome": "fail", "exit_code": 3}``: end it now
``POST /_fake/admission``                          ``{"pod_security": true, "namespaces": [..], "quotas": {"ns": 5}}``
``POST /_fake/quotas/resync``                      ``{"namespace": "ns"}`` (optional): recalculate quota usage now
``POST /_fake/quotas/conflicts``                   ``{"times": 2, "namespace": "ns"}``: next creates get 409
``POST /_fake/priorities``                         ``{"high": 1000, "low": {"value": 10, "preemptionPolicy": "Never"}}``
=================================================  ====================================================================

Errors (bad JSON, unknown fields) are 400 with a Status body.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .config import STRICT_PRESET
from .errors import bad_request
from .faults import FaultRule
from .nodes import NodeSpec, Taint
from .routes import Request, Response, Router

if TYPE_CHECKING:
    from .server import FakeKubeServer

_OK = {"ok": True}


def _guard(fn: Callable[[Request], Any]) -> Callable[[Request], Response]:
    def handler(req: Request) -> Response:
        try:
            result = fn(req)
        except (ValueError, TypeError, KeyError) as exc:
            raise bad_request(f"fakekube control: {exc}") from exc
        return result if isinstance(result, Response) else Response.of(result)

    return handler


class ControlApi:
    def __init__(self, server: FakeKubeServer) -> None:
        self.server = server
        self.cluster = server.cluster

    def register(self, router: Router) -> None:
        g = _guard
        router.add("/_fake/healthz", "_fake", GET=lambda req: Response(200, b"ok", "text/plain"))
        router.add("/_fake/stats", "_fake", GET=g(self.stats))
        router.add("/_fake/stats/reset", "_fake", POST=g(self.reset_stats))
        router.add("/_fake/config", "_fake", GET=g(self.config), POST=g(self.set_config))
        router.add("/_fake/nodes", "_fake", GET=g(self.nodes), POST=g(self.set_nodes))
        router.add("/_fake/nodes/{name}", "_fake", POST=g(self.patch_node), DELETE=g(self.remove_node))
        router.add("/_fake/faults", "_fake", GET=g(self.faults), POST=g(self.add_fault), DELETE=g(self.clear_faults))
        router.add("/_fake/faults/{id}", "_fake", DELETE=g(self.remove_fault))
        router.add("/_fake/compact", "_fake", POST=g(lambda req: {"rv": self.cluster.faults.compact()}))
        router.add("/_fake/drop-watches", "_fake", POST=g(lambda req: {"dropped": self.cluster.faults.drop_watches()}))
        router.add(
            "/_fake/expire-watches", "_fake", POST=g(lambda req: {"expired": self.cluster.faults.expire_watches()})
        )
        router.add("/_fake/history/age", "_fake", POST=g(self.age_history))
        router.add("/_fake/restart", "_fake", POST=g(self.restart))
        router.add("/_fake/quotas/resync", "_fake", POST=g(self.resync_quotas))
        router.add("/_fake/quotas/conflicts", "_fake", POST=g(self.quota_conflicts))
        router.add("/_fake/kubelet/{action}", "_fake", POST=g(self.kubelet))
        router.add("/_fake/pods/{namespace}/{name}/{action}", "_fake", POST=g(self.pod_action))
        router.add("/_fake/admission", "_fake", GET=g(self.admission), POST=g(self.set_admission))
        router.add("/_fake/priorities", "_fake", GET=g(lambda req: self.cluster.priorities), POST=g(self.priorities))

    @staticmethod
    def _body(req: Request) -> Any:
        return req.json(default={}) if req.body.strip() else {}

    def stats(self, req: Request) -> dict[str, Any]:
        return {
            **self.cluster.stats.to_dict(),
            "open_watches": self.cluster.store.open_watches,
            "resource_version": self.cluster.store.rv,
            "config": self.cluster.config.to_dict(),
            "faults": {str(k): v.to_dict() for k, v in self.cluster.faults.rules().items()},
            "overload": self.server.overload.figures(),
            "errors": len(self.server.errors),
        }

    def reset_stats(self, req: Request) -> dict[str, Any]:
        self.cluster.stats.reset()
        self.server.overload.reset()
        return _OK

    def config(self, req: Request) -> dict[str, Any]:
        return self.cluster.config.to_dict()

    def set_config(self, req: Request) -> dict[str, Any]:
        body = dict(self._body(req))
        preset = body.pop("preset", None)
        if preset not in (None, "strict"):
            raise ValueError(f"unknown preset {preset!r}; expected 'strict'")
        if preset == "strict":
            self.cluster.configure(**STRICT_PRESET)
        return self.cluster.configure(**body).to_dict()

    def restart(self, req: Request) -> dict[str, Any]:
        self.server.restart(float(self._body(req).get("downtime", 0.0)))
        return {"restarts": self.server.restarts.count}

    def age_history(self, req: Request) -> dict[str, Any]:
        self.cluster.store.age_history(float(self._body(req)["seconds"]))
        return _OK

    def resync_quotas(self, req: Request) -> dict[str, Any]:
        return {"changed": self.cluster.resync_quotas(self._body(req).get("namespace"))}

    def quota_conflicts(self, req: Request) -> dict[str, Any]:
        body = self._body(req)
        self.cluster.admission.quotas.conflict_next(int(body.get("times", 1)), body.get("namespace"))
        return _OK

    def nodes(self, req: Request) -> list[dict[str, Any]]:
        return self.cluster.nodes()

    def set_nodes(self, req: Request) -> dict[str, Any]:
        body = self._body(req)
        specs = [NodeSpec.from_dict(n) for n in body.get("nodes", [body] if "name" in body else [])]
        if body.get("replace", True):
            self.cluster.set_nodes(specs)
        else:
            for spec in specs:
                self.cluster.add_node(spec)
        return {"nodes": [n["metadata"]["name"] for n in self.cluster.nodes()]}

    def patch_node(self, req: Request) -> dict[str, Any]:
        body = self._body(req)
        taints = body.get("taints")
        return self.cluster.patch_node(
            req.params["name"],
            labels=body.get("labels"),
            taints=None if taints is None else [Taint(**t) for t in taints],
            unschedulable=body.get("unschedulable"),
        )

    def remove_node(self, req: Request) -> dict[str, Any]:
        self.cluster.remove_node(req.params["name"])
        return _OK

    def faults(self, req: Request) -> dict[str, Any]:
        return {str(k): v.to_dict() for k, v in self.cluster.faults.rules().items()}

    def add_fault(self, req: Request) -> dict[str, Any]:
        return {"id": self.cluster.faults.add(FaultRule.from_dict(self._body(req)))}

    def clear_faults(self, req: Request) -> dict[str, Any]:
        self.cluster.faults.clear()
        return _OK

    def remove_fault(self, req: Request) -> dict[str, Any]:
        self.cluster.faults.remove(int(req.params["id"]))
        return _OK

    def kubelet(self, req: Request) -> dict[str, Any]:
        action = req.params["action"]
        if action == "pause":
            self.cluster.pause()
        elif action == "resume":
            self.cluster.resume()
        elif action == "flush":
            return {"actions": self.cluster.flush()}
        else:
            raise ValueError(f"unknown kubelet action {action!r}")
        return _OK

    def pod_action(self, req: Request) -> dict[str, Any]:
        ns, name, action = req.params["namespace"], req.params["name"], req.params["action"]
        if action == "step":
            return {"stage": self.cluster.step(ns, name)}
        if action == "complete":
            body = self._body(req)
            self.cluster.complete(ns, name, body.get("outcome", "succeed"), body.get("exit_code"))
            return {"phase": self.cluster.phase(ns, name)}
        raise ValueError(f"unknown pod action {action!r}")

    def admission(self, req: Request) -> dict[str, Any]:
        return self.cluster.admission.describe()

    def set_admission(self, req: Request) -> dict[str, Any]:
        body = self._body(req)
        if "pod_security" in body:
            self.cluster.admission.enforce_pod_security(bool(body["pod_security"]), body.get("namespaces"))
        for namespace, pods in (body.get("quotas") or {}).items():
            self.cluster.admission.set_quota(namespace, None if pods is None else int(pods))
        return self.cluster.admission.describe()

    def priorities(self, req: Request) -> dict[str, int]:
        values: dict[str, int] = {}
        policies: dict[str, str] = {}
        for name, spec in self._body(req).items():
            if isinstance(spec, dict):
                values[str(name)] = int(spec["value"])
                if "preemptionPolicy" in spec:
                    policies[str(name)] = str(spec["preemptionPolicy"])
            else:
                values[str(name)] = int(spec)
        self.cluster.set_priorities(values, policies)
        return self.cluster.priorities
