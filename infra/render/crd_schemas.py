"""OpenAPI schemas of the custom resources the platform renders, checked strictly and offline.

``PODMONITOR_V1`` is the ``openAPIV3Schema`` of ``monitoring.coreos.com/v1`` PodMonitor from
prometheus-operator v0.91.0 (``example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml``),
with descriptions dropped.  Every field name of ``spec`` and of ``spec.podMetricsEndpoints[]`` is
kept with its type, pattern and enum; the nested objects the platform never sets (auth, TLS,
OAuth2, proxy headers) keep their type only.  :func:`crd_problems` validates like the API server
with field validation ``Strict``: an unknown field is an error, not silently pruned.
"""

from __future__ import annotations

from typing import Any

import jsonschema

_DURATION = r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
_RELABEL_ACTIONS = [
    "replace", "Replace", "keep", "Keep", "drop", "Drop", "hashmod", "HashMod", "labelmap", "LabelMap",
    "labeldrop", "LabelDrop", "labelkeep", "LabelKeep", "lowercase", "Lowercase", "uppercase", "Uppercase",
    "keepequal", "KeepEqual", "dropequal", "DropEqual",
]  # fmt: skip
_RELABEL = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "action": {"type": "string", "enum": _RELABEL_ACTIONS},
            "modulus": {"type": "integer"},
            "regex": {"type": "string"},
            "replacement": {"type": "string"},
            "separator": {"type": "string"},
            "sourceLabels": {"type": "array", "items": {"type": "string"}},
            "targetLabel": {"type": "string"},
        },
    },
}
_OBJECT = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}  # kept by type only (docstring)
_SCRAPE_PROTOCOLS = ["PrometheusProto", "OpenMetricsText0.0.1", "OpenMetricsText1.0.0",
                     "PrometheusText0.0.4", "PrometheusText1.0.0"]  # fmt: skip
_LABEL_SELECTOR = {
    "type": "object",
    "properties": {
        "matchExpressions": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["key", "operator"],
                "properties": {
                    "key": {"type": "string"},
                    "operator": {"type": "string"},
                    "values": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
        "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
_ENDPOINT = {
    "type": "object",
    "properties": {
        "authorization": _OBJECT,
        "basicAuth": _OBJECT,
        "bearerTokenSecret": _OBJECT,
        "enableHttp2": {"type": "boolean"},
        "filterRunning": {"type": "boolean"},
        "followRedirects": {"type": "boolean"},
        "honorLabels": {"type": "boolean"},
        "honorTimestamps": {"type": "boolean"},
        "interval": {"type": "string", "pattern": _DURATION},
        "metricRelabelings": _RELABEL,
        "noProxy": {"type": "string"},
        "oauth2": _OBJECT,
        "params": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
        "path": {"type": "string"},
        "port": {"type": "string"},
        "portNumber": {"type": "integer", "minimum": 1, "maximum": 65535},
        "proxyConnectHeader": _OBJECT,
        "proxyFromEnvironment": {"type": "boolean"},
        "proxyUrl": {"type": "string", "pattern": "^(http|https|socks5)://.+$"},
        "relabelings": _RELABEL,
        "scheme": {"type": "string", "enum": ["http", "https", "HTTP", "HTTPS"]},
        "scrapeTimeout": {"type": "string", "pattern": _DURATION},
        "targetPort": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
        "tlsConfig": _OBJECT,
        "trackTimestampsStaleness": {"type": "boolean"},
    },
}
PODMONITOR_V1: dict[str, Any] = {
    "type": "object",
    "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "spec": {
            "type": "object",
            "required": ["selector"],
            "properties": {
                "attachMetadata": {"type": "object", "properties": {"node": {"type": "boolean"}}},
                "bodySizeLimit": {"type": "string", "pattern": r"(^0|([0-9]*[.])?[0-9]+((K|M|G|T|E|P)i?)?B)$"},
                "convertClassicHistogramsToNHCB": {"type": "boolean"},
                "fallbackScrapeProtocol": {"type": "string", "enum": _SCRAPE_PROTOCOLS},
                "jobLabel": {"type": "string"},
                "keepDroppedTargets": {"type": "integer"},
                "labelLimit": {"type": "integer"},
                "labelNameLengthLimit": {"type": "integer"},
                "labelValueLengthLimit": {"type": "integer"},
                "namespaceSelector": {
                    "type": "object",
                    "properties": {
                        "any": {"type": "boolean"},
                        "matchNames": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "nativeHistogramBucketLimit": {"type": "integer"},
                "nativeHistogramMinBucketFactor": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
                "podMetricsEndpoints": {"type": "array", "items": _ENDPOINT},
                "podTargetLabels": {"type": "array", "items": {"type": "string"}},
                "sampleLimit": {"type": "integer"},
                "scrapeClass": {"type": "string", "minLength": 1},
                "scrapeClassicHistograms": {"type": "boolean"},
                "scrapeNativeHistograms": {"type": "boolean"},
                "scrapeProtocols": {"type": "array", "items": {"type": "string", "enum": _SCRAPE_PROTOCOLS}},
                "selector": _LABEL_SELECTOR,
                "selectorMechanism": {"type": "string", "enum": ["RelabelConfig", "RoleSelector"]},
                "targetLimit": {"type": "integer"},
            },
        },
        "status": _OBJECT,
    },
}
SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {("monitoring.coreos.com/v1", "PodMonitor"): PODMONITOR_V1}


def _strict(schema: Any) -> Any:
    """``schema`` with unknown fields forbidden wherever properties are listed (structural schemas)."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _strict(value) for key, value in schema.items() if not key.startswith("x-kubernetes")}
    preserve = schema.get("x-kubernetes-preserve-unknown-fields")
    if "properties" in schema and "additionalProperties" not in schema and not preserve:
        out["additionalProperties"] = False
    return out


def crd_problems(obj: dict[str, Any]) -> list[str] | None:
    """Strict-validation problems of a custom resource; None when its kind has no known schema."""
    schema = SCHEMAS.get((str(obj.get("apiVersion")), str(obj.get("kind"))))
    if schema is None:
        return None
    validator = jsonschema.Draft7Validator(_strict(schema))
    return [
        f"{'.'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
        for error in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
    ]
