"""The UI from outside the cluster: an Ingress with TLS from a Secret, or a Gateway API HTTPRoute.

``uiHost`` turns it on.  Without ``uiGateway`` it is a ``networking.k8s.io/v1`` Ingress (the chart's
``ingress.apiServer``) for ``uiHost`` to the api-server Service's port, of ``uiIngressClassName``
(empty: the cluster's default class), with ``tls`` from ``uiTlsSecret`` when set.  With ``uiGateway``
(``"<namespace>/<name>"``) it is a ``gateway.networking.k8s.io/v1`` HTTPRoute attached to that
Gateway (the chart's ``apiServer.httpRoute``): Gateway API puts TLS on the Gateway's listener, so
there is no Secret here.  ``[api] base_url`` follows (``https://`` with TLS) unless ``apiBaseUrl``
says otherwise, and the api-server admits traffic only from ``uiIngressNamespace`` (the controller's
or the Gateway's pods), which is then required.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from airflow_k8s.infra.components.airflowcfg import API_PORT
from airflow_k8s.infra.components.k8s import TOKEN_PREFIX, child, metadata, name_of, raw
from airflow_k8s.infra.components.names import PlatformNames
from airflow_k8s.infra.config.addons import AccessSpec

GATEWAY_API = "gateway.networking.k8s.io/v1"


def ingress_spec(access: AccessSpec, service: str) -> dict[str, Any]:
    backend = {"service": {"name": service, "port": {"number": API_PORT}}}
    spec: dict[str, Any] = {
        "rules": [{"host": access.host, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}]
    }
    if access.ingress_class:
        spec["ingressClassName"] = access.ingress_class
    if access.tls_secret:
        spec["tls"] = [{"hosts": [access.host], "secretName": access.tls_secret}]
    return spec


def http_route_spec(access: AccessSpec, service: str) -> dict[str, Any]:
    namespace, _, gateway = access.gateway.partition("/")
    return {
        "parentRefs": [
            {"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": namespace, "name": gateway}
        ],
        "hostnames": [access.host],
        "rules": [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                "backendRefs": [{"kind": "Service", "name": service, "port": API_PORT}],
            }
        ],
    }


@dataclass(frozen=True)
class UiAccessArgs:
    names: PlatformNames
    access: AccessSpec
    namespace: pulumi.Input[str]
    api_server_service: pulumi.Input[str]


class UiAccess(pulumi.ComponentResource):
    """The Ingress or HTTPRoute (module docstring); ``kind`` says which."""

    route_name: pulumi.Output[str]

    def __init__(self, name: str, args: UiAccessArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TOKEN_PREFIX}UiAccess", name, None, opts)
        n, access = args.names, args.access
        meta = raw(metadata(n.ui, args.namespace, n.common_labels("ui")))
        route: pulumi.CustomResource
        if access.gateway:
            self.kind = "HTTPRoute"
            route = k8s.apiextensions.CustomResource(
                f"{name}-httproute",
                api_version=GATEWAY_API,
                kind="HTTPRoute",
                metadata=meta,
                spec=pulumi.Output.from_input(args.api_server_service).apply(lambda s: http_route_spec(access, s)),
                opts=child(self),
            )
        else:
            self.kind = "Ingress"
            route = k8s.networking.v1.Ingress(
                f"{name}-ingress",
                metadata=meta,
                spec=raw(pulumi.Output.from_input(args.api_server_service).apply(lambda s: ingress_spec(access, s))),
                opts=child(self),
            )
        self.route_name = name_of(route)
        self.register_outputs({"routeName": self.route_name})
