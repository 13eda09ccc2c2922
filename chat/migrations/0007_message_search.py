"""A full-text index of message bodies, on PostgreSQL only (SQLite searches
with icontains). The expression is the one chat.selectors.messages.messages_search
filters on, so that PostgreSQL uses the index."""

from django.db import migrations

INDEX = (
    "CREATE INDEX IF NOT EXISTS message_body_fts ON chat_message "
    "USING gin (to_tsvector('english'::regconfig, COALESCE(body, '')))"
)


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(INDEX)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS message_body_fts")


class Migration(migrations.Migration):
    dependencies = [("chat", "0006_mentions")]
    operations = [migrations.RunPython(forwards, backwards)]
