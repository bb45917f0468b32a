"""What rolls a control-plane Deployment: exactly the inputs its pods read at start, and nothing else.

A Deployment rolls when its pod template changes, and two pod-template annotations carry what the
pods read but the template would not otherwise show:

* ``airflow-k8s/config-sha256`` - sha256 over airflow.cfg, plus the pod templates **only for the
  roles that mount and load them** - the scheduler (it builds task pods) and the dag-processor (the
  executor's cluster policy checks each task's pod at parse time; :func:`config_digest`).
  airflow.cfg is mounted with ``subPath``, which never sees a ConfigMap update, so without the
  annotation a config change would never reach a running pod.  A template-only change restarts
  those two and nothing else - the api-server (the UI and the Execution API) and the triggerer
  keep running.
* ``airflow-k8s/secrets-hmac`` - HMAC-SHA256 of the Secret keys the role reads (names and values,
  :func:`secrets_digest`), keyed with a 32-byte random salt generated once per stack and kept,
  encrypted, in the stack state (:class:`~airflow_k8s.infra.components.secrets.AirflowSecret`).
  Credentials reach the pods as env vars, read once at container start, so rotating ``jwtSecret``,
  the Fernet key or the database password must restart exactly the pods that read that key: the
  JWT secret rolls the scheduler and the api-server together (a scheduler signing with the new
  secret next to an api-server checking with the old one would have every task rejected), the
  ``[api] secret_key`` the api-server and the triggerer, the database URL and Fernet key every
  role.  The migration Job carries only ``secrets-hmac`` (of the database URL and the Fernet key,
  what it reads): its pod template is immutable, so a change replaces it and it migrates again -
  wanted when the database URL names a new database, which must be migrated before the roles roll
  onto it (their ``check-migrations`` init containers would wait on an empty schema), and an
  idempotent no-op otherwise; airflow.cfg and the templates never re-run it.

Why a keyed HMAC and not a plain hash: the annotation is readable by anyone who may ``get`` the
Deployment (and it is in the stack state and the render in clear), and a plain sha256 of a
low-entropy secret - a database password - is brute-forced offline in minutes.  Without the salt
the HMAC reveals nothing about the values; it only changes when one of them does (or when the salt
is replaced: ``pulumi up --replace`` on the salt rolls every role once).  The value is therefore
*unsecreted* on purpose (:func:`pulumi.Output.unsecret`): it is no secret, and a secret annotation
would hide every Deployment's spec in previews and fail the render's leak check.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence

from airflow_k8s.infra.components.names import APP, CONFIG_HASH_ANNOTATION

__all__ = ["CONFIG_HASH_ANNOTATION", "SECRETS_HMAC_ANNOTATION", "config_digest", "secrets_digest"]
SECRETS_HMAC_ANNOTATION = f"{APP}/secrets-hmac"
AIRFLOW_CFG = "airflow.cfg"


def config_digest(airflow_cfg: str, templates: Mapping[str, str] | None = None) -> str:
    """sha256 of airflow.cfg, and of every pod template when ``templates`` is given (the scheduler)."""
    digest = hashlib.sha256()
    items = [(AIRFLOW_CFG, airflow_cfg)]
    if templates is not None:
        items += sorted(templates.items())
    for key, text in items:
        digest.update(key.encode() + b"\0" + text.encode() + b"\0")
    return digest.hexdigest()


def secrets_digest(salt: str, values: Sequence[tuple[str, str]]) -> str:
    """HMAC-SHA256, keyed with ``salt``, of the (Secret key, value) pairs in key order."""
    mac = hmac.new(salt.encode(), digestmod=hashlib.sha256)
    for key, value in sorted(values):
        mac.update(key.encode() + b"\0" + value.encode() + b"\0")
    return mac.hexdigest()
