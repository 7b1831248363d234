"""Data: a constituent known only from calls (a call or voicemail, never a text) was stored with SMS consent
"implied (texted in)", which they never gave. Their consent becomes "none", and each change is logged in the
consent log, as every consent change is. Constituents who ever texted in, opted in or out, or have no
messages at all are left as they are.

It reads the messages table, so it runs after the messages app's migrations (the messages app's models sit
above this app, but its tables only need to exist).
"""

from __future__ import annotations

from typing import Any

from django.db import migrations
from django.db.models import Exists, OuterRef

TEXTS = ("sms", "mms")
CALLS = ("call", "voicemail")
NOTE = "No text was ever received from this constituent, only calls."
BATCH = 1000


def callers_give_no_sms_consent(apps: Any, schema_editor: Any) -> None:
    constituent_model = apps.get_model("constituents", "Constituent")
    event_model = apps.get_model("constituents", "ConsentEvent")
    message_model = apps.get_model("civicdesk_messages", "Message")
    inbound = message_model.objects.filter(conversation__constituent=OuterRef("pk"), direction="inbound")
    callers = (
        constituent_model.objects.filter(sms_consent="implied")
        .filter(Exists(inbound.filter(channel__in=CALLS)))
        .exclude(Exists(inbound.filter(channel__in=TEXTS)))
    )
    rows = list(callers.values_list("pk", "office_id"))
    for start in range(0, len(rows), BATCH):
        batch = rows[start : start + BATCH]
        ids = [pk for pk, _office in batch]
        # Re-checked in the UPDATE, so a text stored meanwhile keeps its constituent's consent.
        constituent_model.objects.filter(pk__in=ids, sms_consent="implied").update(sms_consent="none")
        event_model.objects.bulk_create(
            event_model(
                office_id=office_id,
                constituent_id=pk,
                previous="implied",
                new="none",
                source="corrected",
                note=NOTE,
            )
            for pk, office_id in batch
        )


def callers_back_to_implied(apps: Any, schema_editor: Any) -> None:
    """Backwards: the schema before 0003 has no "none"; every such constituent is "implied" again."""
    constituent_model = apps.get_model("constituents", "Constituent")
    event_model = apps.get_model("constituents", "ConsentEvent")
    event_model.objects.filter(source="corrected").delete()
    event_model.objects.filter(new="none").update(new="implied")
    event_model.objects.filter(previous="none").update(previous="implied")
    constituent_model.objects.filter(sms_consent="none").update(sms_consent="implied")


class Migration(migrations.Migration):
    dependencies = [
        ("constituents", "0003_sms_consent_none"),
        ("civicdesk_messages", "0009_parked_voice_callback_signed_for_office"),
    ]

    operations = [migrations.RunPython(callers_give_no_sms_consent, callers_back_to_implied)]
