"""Which office a Twilio SID belongs to: for the webhook signature check, before any tenant is chosen.

The one reader in this package that takes no ``office=``: it answers the question that comes before a
tenant is known. A webhook signed with an office's own subaccount token may only touch that office's rows
(``messages.twilio.signatures``), so the check asks which offices the SIDs it names already belong to.
"""

from __future__ import annotations

from collections.abc import Collection

from messages.models import Message


def provider_sid_office_ids(*, sids: Collection[str]) -> set[int]:
    """The offices of the stored messages, calls and voicemails whose provider SID is one of ``sids``."""
    if not sids:
        return set()
    return set(Message.objects.filter(provider_sid__in=list(sids)).values_list("office_id", flat=True))
