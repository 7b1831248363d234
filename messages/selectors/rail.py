"""The inbox's left rail: live counts per view, queue and tag.

Two aggregate queries compute everything: one over conversations, with a filtered ``COUNT`` per entry (the
asking member's "My conversations" included), one over conversation tags. Office-wide counts are cached
briefly per office (``RAIL_CACHE_SECONDS``) and shared by every member; each member's own count is cached
beside them and, when only it is missing, costs one small indexed count. Services that change triage state
drop the office's cached counts on commit (``rail_counts_invalidate``); anything else (a new inbound text)
shows within ``RAIL_CACHE_SECONDS``. Cache keys carry the office id.

Without its cache (Redis down or hung) the rail is computed from the database, as when cold; the rules that
keep such a page on time are in ``common.caching``. An invalidation that fails leaves the office's cached
counts (if any) to expire on their own, within ``RAIL_CACHE_SECONDS``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db.models import Count, Q

from common.caching import cache_failed, cache_usable
from messages.models import Channel, Conversation, ConversationStatus, ConversationTag
from messages.selectors.inbox import ACTIVE_STATUSES, InboxLookups
from offices.models import Office

RAIL_CACHE_SECONDS = 20


@dataclass(frozen=True, slots=True)
class RailCounts:
    mine: int = 0
    unassigned: int = 0
    open: int = 0
    voicemail: int = 0
    snoozed: int = 0
    closed: int = 0
    # Open conversations per queue id and per tag id.
    by_queue: dict[int, int] = field(default_factory=dict)
    by_tag: dict[int, int] = field(default_factory=dict)


def _generation_key(office_id: int) -> str:
    return f"inbox-rail:gen:{office_id}"


def _office_key(office_id: int, generation: int) -> str:
    return f"inbox-rail:{office_id}:{generation}"


def _mine_key(office_id: int, generation: int, user_id: int) -> str:
    return f"inbox-rail:{office_id}:{generation}:mine:{user_id}"


def rail_counts_invalidate(*, office_id: int) -> None:
    """Make every member's cached counts for this office stale (one key bump, not a key scan).

    Tried even within a cache outage window (``common.caching``): a skipped bump would leave other
    processes serving counts from before the change.
    """
    try:
        try:
            cache.incr(_generation_key(office_id))
        except ValueError:  # no generation yet: nothing cached to invalidate
            cache.set(_generation_key(office_id), 1, timeout=None)
    except Exception:  # a cache outage must not fail a triage write; counts expire on their own
        cache_failed(f"invalidating the rail counts of office {office_id}")


def rail_counts(*, office: Office, user: AbstractBaseUser, lookups: InboxLookups) -> RailCounts:
    """Cached: no query when warm, one (this member's count) or two (everything) when not."""
    if not cache_usable():
        return rail_counts_compute(office=office, user=user, lookups=lookups)
    try:
        generation = int(cache.get_or_set(_generation_key(office.pk), 0, timeout=None) or 0)
        office_key, mine_key = _office_key(office.pk, generation), _mine_key(office.pk, generation, user.pk)
        cached = cache.get_many([office_key, mine_key])
    except Exception:  # the inbox works without its cache, only slower
        cache_failed("reading the rail counts")
        return rail_counts_compute(office=office, user=user, lookups=lookups)
    counts, mine = cached.get(office_key), cached.get(mine_key)
    if isinstance(counts, RailCounts) and isinstance(mine, int):
        return replace(counts, mine=mine)
    if isinstance(counts, RailCounts):
        mine = mine_count(office=office, user=user)
        _store({mine_key: mine})
        return replace(counts, mine=mine)
    counts = rail_counts_compute(office=office, user=user, lookups=lookups)
    _store({office_key: counts, mine_key: counts.mine})
    return counts


def _store(values: dict[str, object]) -> None:
    if not cache_usable():
        return
    try:
        cache.set_many(values, timeout=RAIL_CACHE_SECONDS)
    except Exception:
        cache_failed("storing the rail counts")


def mine_count(*, office: Office, user: AbstractBaseUser) -> int:
    """One member's open conversations: an index-only count on (office, assignee, status)."""
    return Conversation.objects.filter(office=office, assignee_id=user.pk, status__in=ACTIVE_STATUSES).count()


def rail_counts_compute(*, office: Office, user: AbstractBaseUser, lookups: InboxLookups) -> RailCounts:
    """Uncached: two queries."""
    active = Q(status__in=ACTIVE_STATUSES)
    aggregates = {
        "mine": Count("pk", filter=active & Q(assignee_id=user.pk)),
        "unassigned": Count("pk", filter=active & Q(assignee__isnull=True)),
        "open": Count("pk", filter=active),
        "voicemail": Count("pk", filter=active & Q(last_message_channel=Channel.VOICEMAIL)),
        "snoozed": Count("pk", filter=Q(status=ConversationStatus.SNOOZED)),
        "closed": Count("pk", filter=Q(status=ConversationStatus.CLOSED)),
    }
    for queue in lookups.queues:
        aggregates[f"queue_{queue.pk}"] = Count("pk", filter=active & Q(queue_id=queue.pk))
    totals = Conversation.objects.filter(office=office).aggregate(**aggregates)
    by_tag = dict(
        ConversationTag.objects.filter(conversation__office=office, conversation__status__in=ACTIVE_STATUSES)
        .values("tag_id")
        .annotate(n=Count("pk"))
        .values_list("tag_id", "n")
    )
    return RailCounts(
        mine=totals["mine"],
        unassigned=totals["unassigned"],
        open=totals["open"],
        voicemail=totals["voicemail"],
        snoozed=totals["snoozed"],
        closed=totals["closed"],
        by_queue={queue.pk: totals[f"queue_{queue.pk}"] for queue in lookups.queues},
        by_tag=by_tag,
    )
