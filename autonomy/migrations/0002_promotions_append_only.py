"""research_promotions is an audit trail: UPDATE and DELETE are refused by the database itself."""

from __future__ import annotations

from typing import Any

from django.db import migrations

POSTGRES_UP = """
CREATE OR REPLACE FUNCTION research_promotions_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'research_promotions is append-only (% refused)', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER research_promotions_no_update BEFORE UPDATE ON research_promotions
    FOR EACH ROW EXECUTE FUNCTION research_promotions_append_only();
CREATE TRIGGER research_promotions_no_delete BEFORE DELETE ON research_promotions
    FOR EACH ROW EXECUTE FUNCTION research_promotions_append_only();
"""
POSTGRES_DOWN = """
DROP TRIGGER IF EXISTS research_promotions_no_update ON research_promotions;
DROP TRIGGER IF EXISTS research_promotions_no_delete ON research_promotions;
DROP FUNCTION IF EXISTS research_promotions_append_only();
"""
SQLITE_UP = [
    "CREATE TRIGGER research_promotions_no_update BEFORE UPDATE ON research_promotions "
    "BEGIN SELECT RAISE(ABORT, 'research_promotions is append-only (UPDATE refused)'); END;",
    "CREATE TRIGGER research_promotions_no_delete BEFORE DELETE ON research_promotions "
    "BEGIN SELECT RAISE(ABORT, 'research_promotions is append-only (DELETE refused)'); END;",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS research_promotions_no_update;",
    "DROP TRIGGER IF EXISTS research_promotions_no_delete;",
]


def _run(schema_editor: Any, postgres: str, sqlite: list[str]) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(postgres, params=None)  # the body has a literal %
    elif vendor == "sqlite":
        for statement in sqlite:
            schema_editor.execute(statement)
    else:  # pragma: no cover - only the two supported databases
        raise RuntimeError(f"no append-only trigger for {vendor}")


def forwards(apps: Any, schema_editor: Any) -> None:
    _run(schema_editor, POSTGRES_UP, SQLITE_UP)


def backwards(apps: Any, schema_editor: Any) -> None:
    _run(schema_editor, POSTGRES_DOWN, SQLITE_DOWN)


class Migration(migrations.Migration):
    dependencies = [("autonomy", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
