"""Backup and restore: a dump restored into an empty database holds the same data."""

import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from tests.factories import make_lead, make_opportunity, make_touchpoint
from tests.sla_factories import make_icp, make_sla

pytestmark = pytest.mark.django_db(transaction=True)

TABLES = ("leads_lead", "leads_touchpoint", "leads_opportunity", "sla_slaversion",
          "sla_persona", "auth_user", "auth_group")  # fmt: skip


def counts(conn_kwargs) -> dict:
    with psycopg.connect(**conn_kwargs) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def admin_kwargs(dbname):
    db = settings.DATABASES["default"]
    return {"host": db["HOST"] or "localhost", "port": db.get("PORT") or None,
            "user": db["USER"] or "postgres", "password": db.get("PASSWORD") or None,
            "dbname": dbname, "autocommit": True}  # fmt: skip


def test_a_dump_restores_into_an_empty_database_with_the_same_data(tmp_path, rep):
    make_sla(), make_icp()
    for _ in range(5):
        make_touchpoint(make_lead(owner=rep))
    make_opportunity(owner=rep)
    dump = tmp_path / "accord.dump"
    call_command("backup", str(dump))
    assert dump.stat().st_size > 0
    restored = f"{connection.settings_dict['NAME']}_restored"
    with psycopg.connect(**admin_kwargs("postgres")) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{restored}"')
        admin.execute(f'CREATE DATABASE "{restored}"')
    try:
        call_command("restore", str(dump), into=restored)
        assert counts(admin_kwargs(restored)) == counts(
            admin_kwargs(connection.settings_dict["NAME"])
        )
        with pytest.raises(Exception, match="not empty"):
            call_command("restore", str(dump), into=restored)
    finally:
        with psycopg.connect(**admin_kwargs("postgres")) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{restored}" WITH (FORCE)')
