"""The platform Secret: the control plane's credentials, and nothing any task pod may read.

=================  ====================================  ===========================================
key                env var of the control plane           who gets it
=================  ====================================  ===========================================
``database-url``   ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN``  scheduler, api-server, dag-processor,
                                                          triggerer, migration Job
``fernet-key``     ``AIRFLOW__CORE__FERNET_KEY``           the same five (connections, variables)
``jwt-secret``     ``AIRFLOW__API_AUTH__JWT_SECRET``       scheduler (signs task tokens), api-server
                                                          (checks them) - Airflow asks to restrict it
``api-secret-key`` ``AIRFLOW__API__SECRET_KEY``            api-server and triggerer (log-server
                                                          requests for deferred tasks' logs)
``admin-password`` (the passwords file, init container)    api-server, with the simple auth manager:
                                                          its Admin's password (``adminPassword``)
=================  ====================================  ===========================================

Task pods get none of them: they reach only the Execution API with the short-lived token the
scheduler puts into each workload.

Where the values come from: the database URL is always Pulumi secret config (``databaseUrl``).
The other three may be set as secret config (``fernetKey``, ``jwtSecret``, ``apiSecretKey``);
each one that is not is **generated once** by a ``random:RandomBytes`` (32 bytes) child of this
component.  The decision, and why:

* the Fernet key encrypts connections and variables *in the database*: it must never change by
  itself.  A ``RandomBytes`` lives in the stack state (encrypted, as a secret) and keeps its value
  across every ``pulumi up``; deriving it from another secret would change it whenever that one
  rotates (a database password rotation would make every stored connection unreadable);
* the cost is the ``random`` provider plugin, which the Pulumi CLI installs on the first ``up``
  like the kubernetes one (mocks need none);
* rotating: set the new value with ``pulumi config set --secret <key>``, or ``pulumi up --replace``
  the RandomBytes (for the Fernet key, first follow Airflow's ``rotate-fernet-key`` procedure).

Rollouts: :meth:`AirflowSecret.fingerprint` is the HMAC a role's Deployment carries so that a
change of any key it reads restarts it (:mod:`airflow_k8s.infra.components.rollout`), keyed with
a ``random:RandomBytes`` salt (``<name>-rollout-salt``) generated once and kept in the state.

Values stay secret Outputs all the way (:func:`pulumi.Output.secret` again here, so a caller
passing a plain string cannot produce a non-secret input; ``additional_secret_outputs`` marks
``data``/``stringData`` secret in state).  The component's outputs are the Secret's name and key
names - never a value, never in a ConfigMap, never in a log.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random

from airflow_k8s.infra.components.k8s import TOKEN_PREFIX, child, metadata, name_of, raw
from airflow_k8s.infra.components.rollout import secrets_digest

DATABASE_URL_KEY = "database-url"
FERNET_KEY_KEY = "fernet-key"
JWT_SECRET_KEY = "jwt-secret"  # noqa: S105 - a key name, not a secret
API_SECRET_KEY = "api-secret-key"  # noqa: S105 - a key name, not a secret
ADMIN_PASSWORD_KEY = "admin-password"  # noqa: S105 - a key name: the simple auth manager's Admin
SECRET_KEYS = (DATABASE_URL_KEY, FERNET_KEY_KEY, JWT_SECRET_KEY, API_SECRET_KEY)
ENV_OF_KEY = {
    DATABASE_URL_KEY: "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    FERNET_KEY_KEY: "AIRFLOW__CORE__FERNET_KEY",
    JWT_SECRET_KEY: "AIRFLOW__API_AUTH__JWT_SECRET",
    API_SECRET_KEY: "AIRFLOW__API__SECRET_KEY",
}


@dataclass(frozen=True)
class PlatformSecrets:
    """Secret inputs of the platform (Pulumi secret Outputs, normally from ``require_secret``).

    ``None`` for the optional three: generated once, kept in the stack state (module docstring).
    ``database_url`` is None only when an existing Secret holds it (``existingDatabaseUrlSecret``).
    """

    database_url: pulumi.Input[str] | None
    fernet_key: pulumi.Input[str] | None = None
    jwt_secret: pulumi.Input[str] | None = None
    api_secret_key: pulumi.Input[str] | None = None
    admin_password: pulumi.Input[str] | None = None  # the simple auth manager's Admin (adminPassword)


def fernet_from_base64(value: str) -> str:
    """A Fernet key (url-safe base64 of 32 bytes) from standard base64 of 32 random bytes."""
    return value.replace("+", "-").replace("/", "_")


@dataclass(frozen=True)
class AirflowSecretArgs:
    namespace: pulumi.Input[str]
    secret_name: str
    secrets: PlatformSecrets
    labels: dict[str, str]
    # platform key -> "<secret>:<key>" of the operator's Secret holding it instead (neither set nor generated)
    existing: Mapping[str, str] = field(default_factory=dict)
    admin_password: bool = False  # keep the simple auth manager's Admin password (given or generated)


class AirflowSecret(pulumi.ComponentResource):
    """The Secret (module docstring); ``generated`` names the keys that were generated."""

    secret_name: pulumi.Output[str]
    keys: tuple[str, ...]
    generated: tuple[str, ...]

    def __init__(self, name: str, args: AirflowSecretArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TOKEN_PREFIX}AirflowSecret", name, None, opts)
        given = {
            FERNET_KEY_KEY: args.secrets.fernet_key,
            JWT_SECRET_KEY: args.secrets.jwt_secret,
            API_SECRET_KEY: args.secrets.api_secret_key,
        }
        if args.admin_password:
            given[ADMIN_PASSWORD_KEY] = args.secrets.admin_password
        values: dict[str, pulumi.Input[str]] = {}
        if DATABASE_URL_KEY not in args.existing:
            if args.secrets.database_url is None:
                raise ValueError("the database URL is neither given (databaseUrl) nor in an existing Secret")
            values[DATABASE_URL_KEY] = pulumi.Output.secret(args.secrets.database_url)
        generated = []
        for key, configured in given.items():
            if key in args.existing:
                continue
            value = configured
            if value is None:
                random_bytes = pulumi_random.RandomBytes(f"{name}-{key}", length=32, opts=child(self))
                value = random_bytes.base64.apply(fernet_from_base64) if key == FERNET_KEY_KEY else random_bytes.base64
                generated.append(key)
            values[key] = pulumi.Output.secret(value)
        secret = k8s.core.v1.Secret(
            f"{name}-secret",
            metadata=raw(metadata(args.secret_name, args.namespace, args.labels)),
            type="Opaque",
            string_data=values,
            opts=child(self, additional_secret_outputs=["data", "stringData"]),
        )
        self.secret_name = name_of(secret)
        self.keys = SECRET_KEYS
        self.generated = tuple(generated)
        # a key in an operator's Secret enters the fingerprint by reference: its rotation is the operator's
        self._values = {**values, **{key: f"existing:{ref}" for key, ref in args.existing.items()}}
        self._salt = pulumi_random.RandomBytes(f"{name}-rollout-salt", length=32, opts=child(self)).base64
        self.register_outputs({"secretName": self.secret_name, "keys": list(self.keys)})

    def fingerprint(self, keys: Sequence[str]) -> pulumi.Output[str]:
        """HMAC of the values of ``keys`` under the stack's salt: changes exactly when one of them does.

        Unsecreted on purpose (:mod:`airflow_k8s.infra.components.rollout`): it reveals nothing
        without the salt, and it goes into a Deployment's pod-template annotation.
        """
        wanted = sorted(set(keys))
        unknown = set(wanted) - set(self._values)
        if unknown:
            raise ValueError(f"not keys of the platform Secret: {sorted(unknown)}")
        digest = pulumi.Output.all(self._salt, *(self._values[key] for key in wanted)).apply(
            lambda v: secrets_digest(v[0], list(zip(wanted, v[1:], strict=True)))
        )
        return pulumi.Output.unsecret(digest)
