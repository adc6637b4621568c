"""Database walls behind the services: final statements and their lines refuse UPDATE and
DELETE, and on PostgreSQL a device's memberships may not overlap in time."""

from typing import Any

from django.db import migrations

PG_FORWARD = [
    """
    CREATE FUNCTION billing_refuse_final_statement() RETURNS trigger AS $$
    BEGIN
        IF OLD.status = 'final' THEN
            RAISE EXCEPTION 'billing: statement % is final and cannot be changed', OLD.id
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
        RETURN NEW;
    END $$ LANGUAGE plpgsql;
    """,
    """
    CREATE TRIGGER billing_statement_immutable BEFORE UPDATE OR DELETE ON billing_statement
    FOR EACH ROW EXECUTE FUNCTION billing_refuse_final_statement();
    """,
    # Statement-level with transition tables: a close writes 100,000s of draft lines by COPY,
    # and one set-based check per statement costs far less than one per row.
    """
    CREATE FUNCTION billing_refuse_final_lines() RETURNS trigger AS $$
    BEGIN
        IF EXISTS (SELECT 1 FROM changed_lines l JOIN billing_statement s
                   ON s.id = l.statement_id WHERE s.status = 'final') THEN
            RAISE EXCEPTION 'billing: lines of a final statement cannot be changed'
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN NULL;
    END $$ LANGUAGE plpgsql;
    """,
    """
    CREATE TRIGGER billing_line_insert_final AFTER INSERT ON billing_statementline
    REFERENCING NEW TABLE AS changed_lines
    FOR EACH STATEMENT EXECUTE FUNCTION billing_refuse_final_lines();
    """,
    """
    CREATE TRIGGER billing_line_update_final AFTER UPDATE ON billing_statementline
    REFERENCING OLD TABLE AS changed_lines
    FOR EACH STATEMENT EXECUTE FUNCTION billing_refuse_final_lines();
    """,
    """
    CREATE TRIGGER billing_line_delete_final AFTER DELETE ON billing_statementline
    REFERENCING OLD TABLE AS changed_lines
    FOR EACH STATEMENT EXECUTE FUNCTION billing_refuse_final_lines();
    """,
    # btree_gist is a trusted extension (PostgreSQL 13+): a database owner may create it.
    "CREATE EXTENSION IF NOT EXISTS btree_gist;",
    """
    ALTER TABLE billing_contractdevice ADD CONSTRAINT billing_device_no_overlap
    EXCLUDE USING gist (device_id WITH =, daterange(joined_on, left_on, '[)') WITH &&);
    """,
]
PG_BACKWARD = [
    "ALTER TABLE billing_contractdevice DROP CONSTRAINT billing_device_no_overlap;",
    "DROP TRIGGER billing_line_insert_final ON billing_statementline;",
    "DROP TRIGGER billing_line_update_final ON billing_statementline;",
    "DROP TRIGGER billing_line_delete_final ON billing_statementline;",
    "DROP FUNCTION billing_refuse_final_lines();",
    "DROP TRIGGER billing_statement_immutable ON billing_statement;",
    "DROP FUNCTION billing_refuse_final_statement();",
]
SQLITE_FORWARD = [
    """
    CREATE TRIGGER billing_statement_no_update BEFORE UPDATE ON billing_statement
    WHEN OLD.status = 'final'
    BEGIN SELECT RAISE(ABORT, 'billing: statement is final and cannot be changed'); END;
    """,
    """
    CREATE TRIGGER billing_statement_no_delete BEFORE DELETE ON billing_statement
    WHEN OLD.status = 'final'
    BEGIN SELECT RAISE(ABORT, 'billing: statement is final and cannot be deleted'); END;
    """,
    """
    CREATE TRIGGER billing_line_no_update BEFORE UPDATE ON billing_statementline
    WHEN (SELECT status FROM billing_statement WHERE id = OLD.statement_id) = 'final'
    BEGIN SELECT RAISE(ABORT, 'billing: lines of a final statement cannot be changed'); END;
    """,
    """
    CREATE TRIGGER billing_line_no_delete BEFORE DELETE ON billing_statementline
    WHEN (SELECT status FROM billing_statement WHERE id = OLD.statement_id) = 'final'
    BEGIN SELECT RAISE(ABORT, 'billing: lines of a final statement cannot be deleted'); END;
    """,
    """
    CREATE TRIGGER billing_line_no_insert BEFORE INSERT ON billing_statementline
    WHEN (SELECT status FROM billing_statement WHERE id = NEW.statement_id) = 'final'
    BEGIN SELECT RAISE(ABORT, 'billing: a final statement takes no new lines'); END;
    """,
]
SQLITE_BACKWARD = [
    "DROP TRIGGER billing_statement_no_update;",
    "DROP TRIGGER billing_statement_no_delete;",
    "DROP TRIGGER billing_line_no_update;",
    "DROP TRIGGER billing_line_no_delete;",
    "DROP TRIGGER billing_line_no_insert;",
]


def _run(statements: dict[str, list[str]]) -> Any:
    def run(apps: Any, schema_editor: Any) -> None:
        for sql in statements.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [
        migrations.RunPython(
            _run({"postgresql": PG_FORWARD, "sqlite": SQLITE_FORWARD}),
            _run({"postgresql": PG_BACKWARD, "sqlite": SQLITE_BACKWARD}),
        ),
    ]
