"""A throwaway PostgreSQL cluster for the end-to-end test: its own data directory, a free loopback port.

Debian's ``postgresql`` package (``.ci/run`` installs it) puts the server in ``/usr/lib/postgresql/<N>/bin``,
off ``PATH``; elsewhere ``initdb`` on ``PATH`` is used.  PostgreSQL refuses to run as root, so as root the
cluster belongs to the ``postgres`` user (which the package creates) and lives in a directory of its own
under the system temp dir (pytest's are private to root).  Durability is switched off: the cluster is
deleted after the test.  Only 127.0.0.1 is listened on, with ``trust`` authentication.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.airflow.e2e.processes import Service, Services, free_port, wait_until

DATABASE = "airflow"
SUPERUSER = "postgres"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries here (or no user to run them as)."""


def server_bindir() -> Path:
    """The directory of ``initdb`` and ``postgres``: the newest Debian install, else ``PATH``."""
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if versions:
        return Path(versions[-1]).parent
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise PostgresUnavailable(
        "PostgreSQL's server is not installed (no /usr/lib/postgresql/*/bin/initdb, no initdb on PATH); "
        "on Debian: apt-get install -y postgresql (.ci/run does this)"
    )


def run_as() -> str | None:
    """The user the server runs as: ``postgres`` when we are root, else ourselves (None)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SUPERUSER)
    except KeyError:
        raise PostgresUnavailable("running as root and there is no 'postgres' user to run PostgreSQL as") from None
    return SUPERUSER


@dataclass
class Postgres:
    port: int
    data_dir: Path
    server: Service

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://{SUPERUSER}@127.0.0.1:{self.port}/{DATABASE}"


def start_postgres(services: Services) -> Postgres:
    """initdb, start the server, create the database; the server is one of ``services`` (stopped with them)."""
    bindir = server_bindir()
    user = run_as()
    root = Path(tempfile.mkdtemp(prefix="e2e-postgres-"))
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    services.cleanup_paths.append(root)
    data = root / "data"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
    options = {"env": env, "user": user, "cwd": root}
    services.run(
        "initdb",
        [str(bindir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust", "--no-sync", "-E", "UTF8"],
        timeout=120,
        **options,
    )
    port = free_port()
    settings = {
        "listen_addresses": "127.0.0.1",
        "unix_socket_directories": root,
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "max_connections": 200,
    }
    server = services.start(
        "postgres",
        [str(bindir / "postgres"), "-D", str(data), "-p", str(port)]
        + [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")],
        stop_signal=signal.SIGINT,  # fast shutdown: disconnect clients, no waiting for them
        **options,
    )
    wait_until(
        lambda: _accepts(port),
        timeout=60,
        what=f"PostgreSQL to accept connections on 127.0.0.1:{port}",
        services=services,
        interval=0.2,
    )
    _create_database(port)
    return Postgres(port, data, server)


def _connect(port: int, database: str = "postgres"):  # type: ignore[no-untyped-def]
    import psycopg2

    return psycopg2.connect(host="127.0.0.1", port=port, user=SUPERUSER, dbname=database, connect_timeout=5)


def _accepts(port: int) -> bool:
    import psycopg2

    try:
        _connect(port).close()
    except psycopg2.OperationalError:
        return False
    return True


def _create_database(port: int) -> None:
    connection = _connect(port)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {DATABASE}")
    finally:
        connection.close()
