"""Backups with PostgreSQL's own tools: pg_dump (custom format) and pg_restore.

The tools must match the server's major version; the embedded server's come
with pgserver, a machine's server's live in /usr/lib/postgresql/<version>/bin.
"""

import os
import shutil
import subprocess
import warnings
from pathlib import Path

import psycopg
from django.conf import settings
from django.db import connection


def server_major_version() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version_num")
        return int(cursor.fetchone()[0]) // 10000


def tool(name: str) -> str:
    """The path of pg_dump/pg_restore/psql matching the server's version."""
    major = server_major_version()
    candidates = [Path(f"/usr/lib/postgresql/{major}/bin/{name}")]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR unset
            import pgserver

        bundled = Path(pgserver.__file__).parent / "pginstall" / "bin" / name
        version = subprocess.run([bundled, "--version"], capture_output=True, text=True).stdout
        if f" {major}." in version:
            candidates.insert(0, bundled)
    except (ImportError, OSError):
        pass
    for candidate in candidates:
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} for PostgreSQL {major} is not installed.")
    return found


def connection_args(database: str | None = None) -> tuple[list[str], dict]:
    """Command-line options and environment for the tools, from DATABASES."""
    db = settings.DATABASES["default"]
    args = ["--host", db["HOST"] or "localhost", "--username", db["USER"] or "postgres"]
    if db.get("PORT"):
        args += ["--port", str(db["PORT"])]
    args += ["--dbname", database or db["NAME"]]
    env = dict(os.environ)
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = db["PASSWORD"]
    return args, env


def backup(path: Path, *, database: str | None = None) -> None:
    """Dump the database to `path` (pg_dump custom format, compressed)."""
    args, env = connection_args(database)
    subprocess.run(
        [tool("pg_dump"), "--format=custom", "--no-owner", "--file", str(path), *args],
        env=env,
        check=True,
        capture_output=True,
    )


def restore(path: Path, *, database: str) -> None:
    """Restore a dump into `database`, which must exist and be empty."""
    args, env = connection_args(database)
    db = settings.DATABASES["default"]
    with psycopg.connect(
        host=db["HOST"] or "localhost",
        port=db.get("PORT") or None,
        user=db["USER"] or "postgres",
        password=db.get("PASSWORD") or None,
        dbname=database,
    ) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()[0]
    if tables:
        raise ValueError(
            f"Database {database} is not empty ({tables} tables); restore into a new one."
        )
    subprocess.run(
        [tool("pg_restore"), "--no-owner", "--exit-on-error", *args, str(path)],
        env=env,
        check=True,
        capture_output=True,
    )
