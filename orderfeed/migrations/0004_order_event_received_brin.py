"""A BRIN index on `orderfeed_orderevent.received_at` (Postgres only).

The dashboard's order-feed throughput chart and the time filters read events by `received_at`.
Events are appended in time order, so a BRIN index (a few pages for millions of rows, nothing to
maintain per insert) finds the last hour's pages; a B-tree would cost every ingested event another
index insert. SQLite (the embedded default) has no BRIN and its tables stay small: nothing there.
"""

from django.db import migrations

INDEX = "order_event_received_brin"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON orderfeed_orderevent "
            "USING brin (received_at) WITH (autosummarize = on)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("orderfeed", "0003_event_links_without_fk")]

    operations = [
        migrations.RunPython(create, drop),
        # the default order follows the primary key (ids grow with arrival): the admin list and
        # the API page by the primary key index instead of sorting every event by received_at
        migrations.AlterModelOptions(name="orderevent", options={"ordering": ["-pk"]}),
    ]
