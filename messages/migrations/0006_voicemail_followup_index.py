"""The voice follow-up drain's index (voice.services.followups): voicemails with work pending.

A partial index on the message table, like "message_voicemail_created" in 0003: few rows match at any time
(a voicemail leaves it once the drain has tagged its thread and started its download), so the drain and the
sweeper find pending work without scanning. Its predicate matches the drain's query exactly.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("civicdesk_messages", "0005_callin_campaign_switched_by"),
    ]

    operations = [
        migrations.RunSQL(
            sql=(
                'CREATE INDEX IF NOT EXISTS "message_voicemail_followup" ON "civicdesk_messages_message" '
                '("id") WHERE "channel" = \'voicemail\' AND "details" ? \'followup\''
            ),
            reverse_sql='DROP INDEX IF EXISTS "message_voicemail_followup"',
        ),
    ]
