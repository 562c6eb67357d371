#!/usr/bin/env python
"""Measure the CSV import engine on generated leads (a measurement, not a test).

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/accord_bench_import \\
        .venv/bin/python scripts/bench_import.py [--rows 100000]

Writes ROWS lead rows (a quarter of them at companies with an account, some on
public mail domains) to a temporary CSV file, then imports it through
`csv_open` + `rows_import` into the database DATABASE_URL names. That database
is created if missing, migrated, and its leads and accounts are deleted first:
never point it at a database you care about. Prints rows/s for the first
import (all created) and a second one (all unchanged, nothing written).
"""

import argparse
import csv
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/accord_bench_import"


def database_create(url: str) -> None:
    import psycopg
    from psycopg import sql

    parts = urlparse(url)
    name = parts.path.lstrip("/")
    admin_url = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if not exists:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"created database {name}")


def rows_write(path: Path, count: int, domains: list[str]) -> None:
    rng = random.Random(7)
    channels = ["Paid search", "Webinar", "organic_search", "Email", "Events", "Referral", ""]
    industries = ["software", "retail", "medical", "finance", "telecommunications"]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Email", "First Name", "Last Name", "Job Title", "Company",
                         "Country", "Industry", "Employees", "Lead Source", "Created"])  # fmt: skip
        for n in range(count):
            roll = rng.random()
            if roll < 0.25:
                domain = rng.choice(domains)
            elif roll < 0.35:
                domain = "gmail.com"
            else:
                domain = f"company{n % 20000}.example"
            writer.writerow([
                f"person{n}@{domain}", f"First{n}", f"Last{n}", "Head of Operations",
                domain.split(".")[0].title(), "United States", rng.choice(industries),
                rng.choice(["", "45", "320", "1500", "12000"]), rng.choice(channels),
                f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            ])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()

    os.environ.setdefault("DATABASE_URL", DEFAULT_URL)
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(BASE_DIR))
    database_create(os.environ["DATABASE_URL"])

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from leads.importing import csv_open, mapping_suggest, rows_import
    from leads.models import Account, Lead, LeadStageChange

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:  # a clean slate, fast
        tables = ", ".join(m._meta.db_table for m in (LeadStageChange, Lead, Account))
        cursor.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    accounts = [Account(name=f"Account {n}", name_key=f"account{n}", domain=f"acct{n}.example")
                for n in range(2_000)]  # fmt: skip
    Account.objects.bulk_create(accounts)

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "leads.csv"
        rows_write(path, args.rows, [a.domain for a in accounts])
        size_mb = path.stat().st_size / 1e6
        print(f"{args.rows:,} lead rows, {size_mb:.1f} MB, into {os.environ['DATABASE_URL']}")
        for label in ("first import (all new)", "second import (all unchanged)"):
            started = time.perf_counter()
            table = csv_open(path)
            opened = time.perf_counter()
            result = rows_import(
                kind="leads", rows=table.rows(), mapping=mapping_suggest("leads", table.headers)
            )
            elapsed = time.perf_counter() - started
            print(
                f"{label}: {elapsed:.1f} s ({args.rows / elapsed:,.0f} rows/s; reading and "
                f"checking the file {opened - started:.1f} s) -> created {result.created:,}, "
                f"updated {result.updated:,}, unchanged {result.unchanged:,}, "
                f"rejected {result.error_count:,}"
            )
    print(
        f"leads {Lead.objects.count():,}, with an account "
        f"{Lead.objects.filter(account__isnull=False).count():,}, stage changes "
        f"{LeadStageChange.objects.count():,}"
    )


if __name__ == "__main__":
    main()
