"""The embedded PostgreSQL server used when DATABASE_URL is unset.

`pgserver` ships PostgreSQL binaries in a wheel, so a new machine needs no
database install. The server keeps its data in a project-local directory and
stops when the last process that asked for it exits.
"""

import warnings
from pathlib import Path

DATABASE_NAME = "accord"


def settings_for(data_dir: Path) -> dict:
    """Start (or join) the embedded server in `data_dir`; return Django's
    DATABASES entry for it, creating the `accord` database on first use."""
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset on servers; harmless here.
        warnings.simplefilter("ignore")
        import pgserver

    data_dir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(data_dir)
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {DATABASE_NAME};")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": DATABASE_NAME,
        "USER": "postgres",
        "PASSWORD": "",
        # pgserver listens on a Unix socket inside its data directory.
        "HOST": str(data_dir),
        "PORT": "",
    }


def url_for(settings: dict) -> str:
    """A DATABASE_URL for child processes (worker, beat) to join the same server."""
    return f"postgresql://{settings['USER']}@/{settings['NAME']}?host={settings['HOST']}"
