"""Drop three single-column foreign-key indexes that composite indexes already cover.

- ``conversation.office_id``: the inbox indexes ``conv_office_*`` lead with it;
- ``conversation.constituent_id``: ``conv_constituent_recent`` (and, for unclosed threads, the partial unique
  ``conversation_one_unclosed_per_constituent``) lead with it;
- ``message.conversation_id``: ``message_thread_order`` leads with it.

Every inbound text rewrites its thread's row (the inbox summary) into every index of the conversation table,
and adds its message to every index of the message table; these three were pure write cost
(docs/performance.md, "SMS ingest"). The state changes are ``db_index=False``; the database drops the
indexes ``CONCURRENTLY`` by their Django-generated names, so intake keeps writing meanwhile.
"""

import django.db.models.deletion
from django.db import migrations, models

INDEXES = {
    "civicdesk_messages_conversation_office_id_4344392f": ("civicdesk_messages_conversation", "office_id"),
    "civicdesk_messages_conversation_constituent_id_c6867e57": (
        "civicdesk_messages_conversation",
        "constituent_id",
    ),
    "civicdesk_messages_message_conversation_id_229ce587": ("civicdesk_messages_message", "conversation_id"),
}


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("civicdesk_messages", "0007_drop_message_body_fts"),
        ("constituents", "0002_search_trigrams"),
        ("offices", "0002_voice"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="conversation",
                    name="constituent",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="conversations",
                        to="constituents.constituent",
                    ),
                ),
                migrations.AlterField(
                    model_name="conversation",
                    name="office",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="conversations",
                        to="offices.office",
                    ),
                ),
                migrations.AlterField(
                    model_name="message",
                    name="conversation",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="messages",
                        to="civicdesk_messages.conversation",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql=f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"',
                    reverse_sql=f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{name}" ON "{table}" ("{column}")',
                )
                for name, (table, column) in INDEXES.items()
            ],
        ),
    ]
