"""`make demo`: prepare the database, load demo data, then run the web server,
a Celery worker and beat side by side until Ctrl-C."""

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from config import demo, embedded_postgres


class Command(BaseCommand):
    help = "Load the demo data and serve Accord with a Celery worker and beat."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000", help="Where to serve the app.")
        parser.add_argument(
            "--no-serve", action="store_true", help="Prepare the database and data, then exit."
        )

    def handle(self, *args, addr, no_serve, **options):
        started = time.monotonic()
        self.stdout.write("Preparing the database…")
        call_command("migrate", interactive=False, verbosity=0)
        demo_users = demo.demo_users_create()
        demo.demo_data_load(stdout=self.stdout)
        self.stdout.write(f"Demo data ready in {time.monotonic() - started:.0f} s.\n")
        self.stdout.write(self.style.SUCCESS("Demo users (one per role):"))
        for username, password, role in demo_users:
            self.stdout.write(f"  {role:<14} username: {username:<10} password: {password}")
        if no_serve:
            return
        self.serve(addr)

    def child_env(self) -> dict:
        env = dict(os.environ)
        env.setdefault("DEBUG", "1")
        env["PYTHONUNBUFFERED"] = "1"
        if not os.environ.get("DATABASE_URL"):
            # Children join the embedded server this process started.
            env["DATABASE_URL"] = embedded_postgres.url_for(settings.DATABASES["default"])
        return env

    def serve(self, addr: str) -> None:
        python = sys.executable
        commands = {
            "web": [python, "manage.py", "runserver", addr, "--noreload"],
            "worker": [
                python,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--loglevel=INFO",
                "--concurrency=2",
                "--hostname=demo@%h",
            ],
            "beat": [
                python,
                "-m",
                "celery",
                "-A",
                "config",
                "beat",
                "--loglevel=INFO",
                "--pidfile=",
            ],
        }
        env = self.child_env()
        children = {
            name: subprocess.Popen(command, env=env, cwd=settings.BASE_DIR)
            for name, command in commands.items()
        }
        self.stdout.write(
            self.style.SUCCESS(
                f"\nAccord is running at http://{addr}/ with a Celery worker and beat. "
                "Press Ctrl-C to stop all of it.\n"
            )
        )
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
        try:
            while True:
                for name, child in children.items():
                    if child.poll() is not None:
                        self.stderr.write(
                            f"The {name} process stopped (exit code {child.returncode}); stopping the rest."
                        )
                        raise KeyboardInterrupt
                time.sleep(0.5)
        except KeyboardInterrupt:
            self.stdout.write("\nStopping the web server, worker and beat…")
        finally:
            for child in children.values():
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 15
            for child in children.values():
                try:
                    child.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.kill()
            self.stdout.write("Stopped.")
