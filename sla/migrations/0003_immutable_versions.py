"""Database-level immutability of published SLA and ICP versions.

A published or superseded version row can change only from published to
superseded (nothing else may differ), and can never be deleted; the rows that
belong to a version (engagement groups and rules, behavioural criteria, fit
rules, personas) can be inserted, changed or deleted only while it is a draft.
Violations raise SQLSTATE 23514 (check_violation), an IntegrityError in Django.
"""

from django.db import migrations

VERSION_FUNCTION = """
CREATE OR REPLACE FUNCTION accord_version_immutable() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.status <> 'draft' THEN
            RAISE EXCEPTION 'version % is %, it cannot be deleted', OLD.number, OLD.status
                USING ERRCODE = '23514';
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.status = 'draft' THEN
        RETURN NEW;
    END IF;
    IF OLD.status = 'published' AND NEW.status = 'superseded'
       AND (to_jsonb(NEW) - 'status' - 'superseded_at')
           = (to_jsonb(OLD) - 'status' - 'superseded_at') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'version % is %, it cannot be changed', OLD.number, OLD.status
        USING ERRCODE = '23514';
END;
$$ LANGUAGE plpgsql;
"""

PART_FUNCTION = """
CREATE OR REPLACE FUNCTION accord_version_part_immutable() RETURNS trigger AS $$
DECLARE
    parent_status text;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        EXECUTE format('SELECT status FROM %I WHERE id = $1', TG_ARGV[0])
            INTO parent_status USING OLD.version_id;
        IF parent_status IS NOT NULL AND parent_status <> 'draft' THEN
            RAISE EXCEPTION 'a % version is %, its parts cannot change', TG_ARGV[0], parent_status
                USING ERRCODE = '23514';
        END IF;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        EXECUTE format('SELECT status FROM %I WHERE id = $1', TG_ARGV[0])
            INTO parent_status USING NEW.version_id;
        IF parent_status IS NOT NULL AND parent_status <> 'draft' THEN
            RAISE EXCEPTION 'a % version is %, its parts cannot change', TG_ARGV[0], parent_status
                USING ERRCODE = '23514';
        END IF;
        RETURN NEW;
    END IF;
    RETURN OLD;
END;
$$ LANGUAGE plpgsql;
"""

VERSION_TABLES = ("sla_slaversion", "sla_icpversion")
PART_TABLES = {
    "sla_engagementgroup": "sla_slaversion",
    "sla_engagementrule": "sla_slaversion",
    "sla_behaviourcriterion": "sla_slaversion",
    "sla_fitrule": "sla_icpversion",
    "sla_persona": "sla_icpversion",
}


def forwards_sql() -> list[str]:
    statements = [VERSION_FUNCTION, PART_FUNCTION]
    for table in VERSION_TABLES:
        statements.append(
            f"CREATE TRIGGER {table}_immutable BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION accord_version_immutable();"
        )
    for table, parent in PART_TABLES.items():
        statements.append(
            f"CREATE TRIGGER {table}_immutable BEFORE INSERT OR UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION accord_version_part_immutable('{parent}');"
        )
    return statements


def backwards_sql() -> list[str]:
    statements = [f"DROP TRIGGER IF EXISTS {t}_immutable ON {t};" for t in VERSION_TABLES]
    statements += [f"DROP TRIGGER IF EXISTS {t}_immutable ON {t};" for t in PART_TABLES]
    statements += [
        "DROP FUNCTION IF EXISTS accord_version_part_immutable();",
        "DROP FUNCTION IF EXISTS accord_version_immutable();",
    ]
    return statements


class Migration(migrations.Migration):
    dependencies = [("sla", "0002_agreement")]

    operations = [migrations.RunSQL(forwards_sql(), backwards_sql())]
