"""Call-in day tallies: each caller's position on the campaign's issue, counted once per caller."""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction

from messages.models import Message
from voice.models import CallInCampaign, CallInPosition, CallInTally


@transaction.atomic
def call_in_tally_record(
    *, campaign: CallInCampaign, call: Message, position: CallInPosition, at: datetime
) -> CallInTally:
    """Record the caller's position. A repeat caller (same phone) updates their row: their latest position
    counts, once. A repeated webhook of the same call changes nothing. Callers who withheld their number
    cannot be recognised, so each such call is its own row (the summary shows them apart).

    Locks the tally row; concurrent calls from one number race on the unique (campaign, phone) constraint
    and the loser updates the winner's row.
    """
    call_sid = call.provider_sid or ""
    constituent = call.conversation.constituent
    phone = constituent.phone
    lookup = {"caller_phone": phone} if phone else {"first_call_sid": call_sid}
    tally = CallInTally.objects.select_for_update().filter(campaign=campaign, **lookup).first()
    if tally is None:
        try:
            with transaction.atomic():
                return CallInTally.objects.create(
                    office_id=campaign.office_id,
                    campaign=campaign,
                    constituent=constituent,
                    caller_phone=phone,
                    position=position,
                    in_district=constituent.in_district,
                    first_call_sid=call_sid,
                    last_call_sid=call_sid,
                    created_at=at,
                    updated_at=at,
                )
        except IntegrityError:
            tally = CallInTally.objects.select_for_update().filter(campaign=campaign, **lookup).first()
            if tally is None:  # some other constraint failed
                raise
    if tally.last_call_sid != call_sid:
        tally.call_count += 1
        tally.last_call_sid = call_sid
    tally.position = position
    tally.in_district = constituent.in_district
    tally.constituent = constituent
    tally.updated_at = at
    tally.save(
        update_fields=["call_count", "last_call_sid", "position", "in_district", "constituent", "updated_at"]
    )
    return tally
