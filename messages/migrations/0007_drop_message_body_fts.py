"""Drop ``message_body_fts``, the expression GIN index on ``to_tsvector('english', body)``.

Search reads the stored ``search_document`` through its own GIN index (0004), so nothing used this one,
while every new message paid for it: one more ``to_tsvector`` and one more GIN insertion on the hottest
write in civicdesk (docs/performance.md, "SMS ingest"). Dropped CONCURRENTLY, so intake keeps writing.
"""

from django.contrib.postgres.operations import RemoveIndexConcurrently
from django.db import migrations


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("civicdesk_messages", "0006_voicemail_followup_index"),
    ]

    operations = [
        RemoveIndexConcurrently(model_name="message", name="message_body_fts"),
    ]
