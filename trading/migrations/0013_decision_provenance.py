"""Provenance from promotion to decision (issue 21, item 6).

`Strategy` gains the promotion that applied it (`promotion_ref`, `promotion_candidate_id`);
`TradeDecision` records the strategy version and that promotion at insert time. On the hot
decision table the new columns are nullable or carry a constant default (no table rewrite), and
their immutability is a trigger (no table scan, unlike a CHECK constraint) that refuses an UPDATE
changing either column.
"""

from typing import Any

from django.db import migrations, models

POSTGRES_UP = """
CREATE OR REPLACE FUNCTION trading_decision_provenance_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'a trade decision''s strategy_version and promotion_ref are immutable'
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER trading_decision_provenance_no_update
    BEFORE UPDATE OF strategy_version, promotion_ref ON trading_tradedecision
    FOR EACH ROW
    WHEN (OLD.strategy_version IS DISTINCT FROM NEW.strategy_version
          OR OLD.promotion_ref IS DISTINCT FROM NEW.promotion_ref)
    EXECUTE FUNCTION trading_decision_provenance_immutable();
"""
POSTGRES_DOWN = """
DROP TRIGGER IF EXISTS trading_decision_provenance_no_update ON trading_tradedecision;
DROP FUNCTION IF EXISTS trading_decision_provenance_immutable();
"""
SQLITE_UP = [
    "CREATE TRIGGER trading_decision_provenance_no_update "
    "BEFORE UPDATE OF strategy_version, promotion_ref ON trading_tradedecision "
    "WHEN OLD.strategy_version IS NOT NEW.strategy_version "
    "OR OLD.promotion_ref IS NOT NEW.promotion_ref "
    "BEGIN SELECT RAISE(ABORT, 'a trade decision''s provenance is immutable'); END;",
]
SQLITE_DOWN = ["DROP TRIGGER IF EXISTS trading_decision_provenance_no_update;"]


def _run(schema_editor: Any, postgres: str, sqlite: list[str]) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(postgres, params=None)
    elif vendor == "sqlite":
        for statement in sqlite:
            schema_editor.execute(statement)
    else:  # pragma: no cover - only the two supported databases
        raise RuntimeError(f"no provenance trigger for {vendor}")


def forwards(apps: Any, schema_editor: Any) -> None:
    _run(schema_editor, POSTGRES_UP, SQLITE_UP)


def backwards(apps: Any, schema_editor: Any) -> None:
    _run(schema_editor, POSTGRES_DOWN, SQLITE_DOWN)


class Migration(migrations.Migration):

    dependencies = [
        ('trading', '0012_fill_checks'),
    ]

    operations = [
        migrations.AddField(
            model_name='strategy',
            name='promotion_candidate_id',
            field=models.CharField(blank=True, default='', help_text='research candidate that promotion chose', max_length=64),
        ),
        migrations.AddField(
            model_name='strategy',
            name='promotion_ref',
            field=models.BigIntegerField(blank=True, help_text='id of the autonomy promotion that applied this row', null=True),
        ),
        migrations.AddField(
            model_name='tradedecision',
            name='promotion_ref',
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='tradedecision',
            name='strategy_version',
            field=models.CharField(blank=True, default='', max_length=40),
        ),
        migrations.AddIndex(
            model_name='tradedecision',
            index=models.Index(condition=models.Q(('promotion_ref__isnull', False)), fields=['promotion_ref', '-created_at'], name='decision_promotion_idx'),
        ),
        migrations.AddConstraint(
            model_name='strategy',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('promotion_candidate_id', ''), ('promotion_ref__isnull', True)), models.Q(('promotion_candidate_id__regex', '^\\S+$'), ('promotion_ref__gt', 0), ('promotion_ref__isnull', False), ('source', 'promotion')), _connector='OR'), name='strategy_promotion_provenance'),
        ),
        migrations.RunPython(forwards, backwards),
    ]
