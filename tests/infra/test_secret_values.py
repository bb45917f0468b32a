"""Secret stack values are checked before anything is created, each error naming the key and never the value."""

from __future__ import annotations

import pulumi
import pytest

from airflow_k8s.infra.config.secret_values import OFFLINE_PLACEHOLDER, secret_problems

from .conftest import SECRET_DB_URL, SECRET_FERNET, SECRET_JWT, run_stack

BAD_DATABASE_URLS = {
    "a newline": ("postgresql://airflow:pw@db:5432/airflow\n", "contains a control character"),
    "quotes": ('"postgresql://airflow:pw@db:5432/airflow"', "contains a quote"),
    "no scheme": ("airflow:pw@db:5432/airflow", "is not a SQLAlchemy URL"),
    "a bare word": ("mydb", "is not a SQLAlchemy URL"),
    "an unknown dialect": ("oracle://airflow:pw@db:1521/airflow", "has the dialect 'oracle'"),
    "the removed postgres alias": ("postgres://airflow:pw@db:5432/airflow", "has the dialect 'postgres'"),
    "SQLite": ("sqlite:////tmp/airflow.db", "is a SQLite URL"),
    "no host": ("postgresql://airflow:pw@/airflow", "names no host"),
    "a port that is not a number": ("postgresql://airflow:pw@db:54x2/airflow", "port that is not a number"),
    "a space": ("postgresql://airflow:p w@db/airflow", "contains a space"),
}


@pytest.mark.parametrize("bad", BAD_DATABASE_URLS.values(), ids=BAD_DATABASE_URLS.keys())
def test_a_database_url_sqlalchemy_would_refuse_is_an_error_naming_the_key_not_the_value(bad) -> None:
    url, reason = bad
    (problem,) = secret_problems({"databaseUrl": url})
    assert str(problem).startswith("airflow-k8s:databaseUrl = <secret>: ") and reason in str(problem)
    assert url.strip().strip('"') not in str(problem)


@pytest.mark.parametrize(
    "url",
    [
        SECRET_DB_URL,
        "postgresql+psycopg2://airflow:p%40ss%22word@db.internal/airflow?sslmode=require",
        "mysql+mysqldb://airflow:pw@[2001:db8::1]:3306/airflow",
    ],
)
def test_database_urls_airflow_can_use_pass(url: str) -> None:
    assert secret_problems({"databaseUrl": url}) == []


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("jwtSecret", "x", "is 1 byte(s): the JWT signing secret must be at least 32 bytes"),
        ("jwtSecret", "a" * 31, "is 31 byte(s)"),
        ("fernetKey", "not-base64!!", "is not url-safe base64"),
        ("fernetKey", "c2hvcnQ=", "decodes to 5 bytes: a Fernet key is 32 url-safe base64-encoded bytes"),
        ("fernetKey", f"{SECRET_FERNET},c2hvcnQ=", "key 2 of the list decodes to 5 bytes"),
    ],
)
def test_short_jwt_secrets_and_malformed_fernet_keys_are_errors_naming_the_key(key, value, reason) -> None:
    (problem,) = secret_problems({key: value})
    assert str(problem) == f"airflow-k8s:{key} = <secret>: {reason}" or reason in str(problem)
    assert str(problem).startswith(f"airflow-k8s:{key} = <secret>: ")


def test_good_jwt_secrets_fernet_keys_and_rotation_lists_pass() -> None:
    assert secret_problems({"jwtSecret": SECRET_JWT, "fernetKey": SECRET_FERNET}) == []
    assert secret_problems({"fernetKey": f"{SECRET_FERNET},{SECRET_FERNET}"}) == []


def test_the_offline_renders_placeholder_is_not_checked() -> None:
    keys = ("databaseUrl", "jwtSecret", "fernetKey")
    assert secret_problems(dict.fromkeys(keys, OFFLINE_PLACEHOLDER)) == []


def test_the_stack_program_refuses_bad_secrets_before_creating_anything() -> None:
    bad_url = "postgresql://airflow:pw@db:5432/airflow\nX"
    with pytest.raises(pulumi.RunError) as info:
        run_stack(databaseUrl=bad_url, jwtSecret="short")
    message = str(info.value)
    assert "airflow-k8s:databaseUrl = <secret>: contains a control character" in message
    assert "airflow-k8s:jwtSecret = <secret>: is 5 byte(s)" in message
    assert "pw@db" not in message and "short" not in message
