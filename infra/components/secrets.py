"""The platform Secret: database URL and (optionally) the Fernet key.

Values come from Pulumi *secret* config (``config.require_secret``) and stay wrapped as secret
Outputs all the way: :func:`pulumi.Output.secret` is applied again here so that even a caller
passing a plain string cannot produce a non-secret input, and ``additional_secret_outputs``
marks ``data``/``stringData`` secret in state (pulumi-kubernetes does this for Secrets already;
saying it twice costs nothing).  The component's outputs are the Secret's *name* and its *key
names* - never a value.  Task pods read the values through ``secretKeyRef`` (see
:mod:`airflow_k8s.infra.components.podtemplates`); nothing is ever copied into a ConfigMap.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from airflow_k8s.infra.components.k8s import TOKEN_PREFIX, child, metadata, name_of, raw

DATABASE_URL_KEY = "database-url"
FERNET_KEY_KEY = "fernet-key"


@dataclass(frozen=True)
class PlatformSecrets:
    """Secret inputs of the platform (Pulumi secret Outputs, normally from require_secret)."""

    database_url: pulumi.Input[str]
    fernet_key: pulumi.Input[str] | None = None

    def keys(self) -> tuple[str, ...]:
        return (DATABASE_URL_KEY,) + ((FERNET_KEY_KEY,) if self.fernet_key is not None else ())


@dataclass(frozen=True)
class AirflowSecretArgs:
    namespace: pulumi.Input[str]
    secret_name: str
    secrets: PlatformSecrets
    labels: dict[str, str]


class AirflowSecret(pulumi.ComponentResource):
    secret_name: pulumi.Output[str]
    keys: tuple[str, ...]

    def __init__(self, name: str, args: AirflowSecretArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TOKEN_PREFIX}AirflowSecret", name, None, opts)
        values: dict[str, pulumi.Input[str]] = {DATABASE_URL_KEY: pulumi.Output.secret(args.secrets.database_url)}
        if args.secrets.fernet_key is not None:
            values[FERNET_KEY_KEY] = pulumi.Output.secret(args.secrets.fernet_key)
        secret = k8s.core.v1.Secret(
            f"{name}-secret",
            metadata=raw(metadata(args.secret_name, args.namespace, args.labels)),
            type="Opaque",
            string_data=values,
            opts=child(self, additional_secret_outputs=["data", "stringData"]),
        )
        self.secret_name = name_of(secret)
        self.keys = args.secrets.keys()
        self.register_outputs({"secretName": self.secret_name, "keys": list(self.keys)})
