"""Real processes for the tests that are about them: a Celery worker, beat."""

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from urllib.parse import quote

from django.conf import settings
from django.db import connection


def test_database_url() -> str:
    """A DATABASE_URL for the database this test run uses (test_...)."""
    db = connection.settings_dict
    user = quote(db["USER"] or "")
    password = f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else ""
    host = db["HOST"] or ""
    if host.startswith("/"):  # a Unix socket directory (the embedded server)
        return f"postgresql://{user}{password}@/{db['NAME']}?host={host}"
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgresql://{user}{password}@{host}{port}/{db['NAME']}"


def child_env(**extra) -> dict:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=test_database_url(),
        DEBUG="1",
        PYTHONUNBUFFERED="1",
        CONN_MAX_AGE="0",
    )
    env.update(extra)
    return env


@contextmanager
def celery_process(*args, **extra_env):
    """Run `celery -A config <args>` until the block ends; yield the Popen."""
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", *args],
        cwd=settings.BASE_DIR,
        env=child_env(**extra_env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for(predicate, *, timeout: float = 30, interval: float = 0.2, process=None):
    """Poll until predicate() is truthy; fail with the process's output if not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if process is not None and process.poll() is not None:
            raise AssertionError(f"process exited early:\n{process.stdout.read()}")
        time.sleep(interval)
    output = ""
    if process is not None:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=20)[0]
    raise AssertionError(f"condition not met within {timeout} s\n{output}")
