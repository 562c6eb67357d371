"""Backup and restore: a dump restored into an empty database holds the same data."""

import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from tests.factories import make_account, make_lead, make_opportunity, make_touchpoint
from tests.sla_factories import make_icp, make_sla

pytestmark = pytest.mark.django_db(transaction=True)

TABLES = ("leads_account", "leads_lead", "leads_touchpoint", "leads_leadstagechange",
          "leads_opportunity", "sla_slaversion", "sla_icpversion", "sla_persona",
          "sla_scoreevaluation", "config_auditentry", "auth_user", "auth_group")  # fmt: skip


def table_contents(conn_kwargs) -> dict:
    """Per table: its row count and a digest of every row's text, in id order
    (so a restore that lost, added or altered any value shows)."""
    with psycopg.connect(**conn_kwargs) as conn:
        conn.execute("SET TIME ZONE 'UTC'")  # timestamps print the same on both sides
        return {
            table: conn.execute(
                f"SELECT count(*), md5(string_agg(t::text, '|' ORDER BY t.id)) FROM {table} t"
            ).fetchone()
            for table in TABLES
        }


def admin_kwargs(dbname):
    db = settings.DATABASES["default"]
    return {"host": db["HOST"] or "localhost", "port": db.get("PORT") or None,
            "user": db["USER"] or "postgres", "password": db.get("PASSWORD") or None,
            "dbname": dbname, "autocommit": True}  # fmt: skip


def test_a_dump_restores_into_an_empty_database_with_the_same_data(tmp_path, rep):
    from leads import services
    from sla.scoring import leads_score

    make_sla(), make_icp()
    account = make_account(name="Acme")
    leads = [
        make_lead(owner=rep, account=account, stage="mql", title="Head of IT") for _ in range(5)
    ]
    for lead in leads:
        make_touchpoint(lead, properties={"utm": "spring", "path": ["/pricing", "/demo"]})
    leads_score([lead.pk for lead in leads])
    services.lead_accept(lead=leads[0], actor=rep)  # a stage change and an audit entry
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
        original = table_contents(admin_kwargs(connection.settings_dict["NAME"]))
        assert all(count for count, _ in original.values()), original  # every table has rows
        assert table_contents(admin_kwargs(restored)) == original
        with pytest.raises(Exception, match="not empty"):
            call_command("restore", str(dump), into=restored)
    finally:
        with psycopg.connect(**admin_kwargs("postgres")) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{restored}" WITH (FORCE)')
