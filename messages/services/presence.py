"""Who is writing a reply right now: "Sam is replying" on a conversation, so two people do not both answer.

Presence is short-lived and advisory, so it lives in the cache (keyed by office and conversation), not in the
database. The composer sends a heartbeat while someone types; an entry expires PRESENCE_SECONDS after the last
one. A cache outage just means no notice (and heartbeats are dropped): ``common.caching`` says how a page
stays on time when Redis is down or hangs.
"""

from __future__ import annotations

import time

from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache

from common.caching import cache_failed, cache_usable
from messages.models import Conversation

PRESENCE_SECONDS = 20


def _key(conversation: Conversation) -> str:
    return f"replying:{conversation.office_id}:{conversation.pk}"


def replying_mark(*, conversation: Conversation, user: AbstractBaseUser, now: float | None = None) -> None:
    """Record that ``user`` is composing a reply (last-writer-wins; a lost heartbeat only delays a notice)."""
    now = now if now is not None else time.time()
    if not cache_usable():
        return
    try:
        entries: dict[int, tuple[str, float]] = cache.get(_key(conversation)) or {}
        entries = {uid: entry for uid, entry in entries.items() if entry[1] > now}
        entries[user.pk] = (user.get_username(), now + PRESENCE_SECONDS)
        cache.set(_key(conversation), entries, timeout=PRESENCE_SECONDS * 2)
    except Exception:
        cache_failed("marking who is replying")


def replying_clear(*, conversation: Conversation, user: AbstractBaseUser) -> None:
    if not cache_usable():
        return
    try:
        entries: dict[int, tuple[str, float]] = cache.get(_key(conversation)) or {}
        if entries.pop(user.pk, None) is not None:
            cache.set(_key(conversation), entries, timeout=PRESENCE_SECONDS * 2)
    except Exception:
        cache_failed("clearing who is replying")


def replying_others(
    *, conversation: Conversation, user: AbstractBaseUser, now: float | None = None
) -> list[str]:
    """Usernames of the other people composing a reply to this conversation."""
    now = now if now is not None else time.time()
    if not cache_usable():
        return []
    try:
        entries: dict[int, tuple[str, float]] = cache.get(_key(conversation)) or {}
    except Exception:
        cache_failed("reading who is replying")
        return []
    return sorted(name for uid, (name, expires) in entries.items() if uid != user.pk and expires > now)
