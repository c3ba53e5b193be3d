"""An index on Event.received_at, for the analytics export's search for events still settling.

The events table may hold tens of millions of rows: on PostgreSQL the index is built
CONCURRENTLY (writes go on while it builds), which cannot run inside a transaction, hence
`atomic = False`. SQLite has no such option and builds it the ordinary way.

A concurrent build that fails leaves an INVALID index behind: drop `event_received_at` before
running this migration again.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations, models


class AddIndexConcurrentlyOnPostgreSQL(migrations.AddIndex):
    """AddIndex, built CONCURRENTLY where the database can (Django's AddIndexConcurrently
    refuses every database but PostgreSQL)."""

    def database_forwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        if schema_editor.connection.vendor != "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)
            return
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            schema_editor.add_index(model, self.index, concurrently=True)

    def database_backwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        if schema_editor.connection.vendor != "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)
            return
        model = from_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            schema_editor.remove_index(model, self.index, concurrently=True)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("onboarding", "0013_element_present_trigger"),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgreSQL(
            model_name="event",
            index=models.Index(fields=["received_at"], name="event_received_at"),
        ),
    ]
