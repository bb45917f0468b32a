"""Checks of the secret stack values (never shown in an error): the database URL, the JWT secret, the Fernet key.

A bad secret would otherwise be found only when a pod starts and Airflow refuses it (a crash loop
after ``pulumi up`` has replaced the Secret).  Each check says what is wrong, naming the key,
without echoing the value:

* ``databaseUrl`` is parsed as SQLAlchemy parses it (``sqlalchemy.engine.url._parse_url``'s
  pattern, written out below: SQLAlchemy is Airflow's dependency, not the stack program's):
  ``dialect[+driver]://[user[:password]@]host[:port]/database[?query]``.  Control characters (a
  newline pasted in), quotes (a value pasted with its quotes; percent-encode a quote in a
  password: ``%22`` / ``%27``), an unknown dialect (Airflow runs on PostgreSQL and MySQL; SQLite's
  file cannot be shared by the control plane's pods), no host, or a port that is not a number
  are refused.
* ``jwtSecret`` signs the task tokens: at least 32 bytes, as Airflow's documentation advises for
  an HMAC key (a short one can be brute-forced offline from any token).
* ``fernetKey`` is what ``cryptography.fernet.Fernet`` accepts: url-safe base64 of exactly 32
  bytes; a comma-separated list (Airflow's key rotation) has each key checked.

The offline render substitutes :data:`OFFLINE_PLACEHOLDER` for every secret; it is not checked.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping

from airflow_k8s.infra.config.problem import Problem

OFFLINE_PLACEHOLDER = "REDACTED-offline-render-placeholder"
JWT_MIN_BYTES = 32
DIALECTS = ("postgresql", "mysql")

# sqlalchemy.engine.url._parse_url (SQLAlchemy 2.0), anchored at the end.
_SQLALCHEMY_URL = re.compile(
    r"""
        (?P<name>[\w\+]+)://
        (?:
            (?P<username>[^:/]*)
            (?::(?P<password>[^@]*))?
        @)?
        (?:
            (?:
                \[(?P<ipv6host>[^/\?]+)\] |
                (?P<ipv4host>[^/:\?]+)
            )?
            (?::(?P<port>[^/\?]*))?
        )?
        (?:/(?P<database>[^\?]*))?
        (?:\?(?P<query>.*))?
    \Z""",
    re.X,
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def secret_problems(values: Mapping[str, str | None]) -> list[Problem]:
    """What is wrong with the secret values given (key -> plaintext); the values never appear."""
    checks = {"databaseUrl": database_url_problem, "jwtSecret": jwt_secret_problem, "fernetKey": fernet_key_problem}
    problems = []
    for key, check in checks.items():
        value = values.get(key)
        if value is None or value == OFFLINE_PLACEHOLDER:
            continue
        reason = check(value)
        if reason:
            problems.append(Problem(key, value, reason, secret=True))
    return problems


def database_url_problem(url: str) -> str | None:
    if _CONTROL.search(url):
        return "contains a control character (a newline or tab pasted in?)"
    if '"' in url or "'" in url:
        return "contains a quote: set the URL without quotes, and percent-encode a quote in the password (%22, %27)"
    if " " in url:
        return "contains a space: percent-encode it in the password (%20)"
    match = _SQLALCHEMY_URL.match(url)
    if match is None or "://" not in url:
        return "is not a SQLAlchemy URL: expected dialect[+driver]://user:password@host:port/database"
    dialect = match["name"].split("+")[0]
    if dialect not in DIALECTS:
        if dialect == "sqlite":
            return "is a SQLite URL: its file cannot be shared by the scheduler, api-server and dag-processor pods"
        return f"has the dialect {dialect!r}: Airflow runs on {' or '.join(DIALECTS)} (postgresql+psycopg2://...)"
    if not (match["ipv4host"] or match["ipv6host"]):
        return "names no host: expected dialect[+driver]://user:password@host:port/database"
    port = match["port"]
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        return "has a port that is not a number from 1 to 65535"
    return None


def jwt_secret_problem(secret: str) -> str | None:
    size = len(secret.encode("utf-8"))
    if size < JWT_MIN_BYTES:
        return f"is {size} byte(s): the JWT signing secret must be at least {JWT_MIN_BYTES} bytes"
    return None


def fernet_key_problem(keys: str) -> str | None:
    for number, key in enumerate(keys.split(","), 1):
        where = f"key {number} of the list" if "," in keys else "the key"
        try:
            raw = base64.b64decode(key.strip().encode("ascii"), altchars=b"-_", validate=True)
        except (binascii.Error, ValueError, UnicodeEncodeError):
            return f"{where} is not url-safe base64 (generate one: Fernet.generate_key())"
        if len(raw) != 32:
            return f"{where} decodes to {len(raw)} bytes: a Fernet key is 32 url-safe base64-encoded bytes"
    return None
