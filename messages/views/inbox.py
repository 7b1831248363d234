"""The staff inbox list: thin adapters over the inbox selectors and the ConversationFilter FilterSet.

A page is a constant number of queries whatever its size (tests/messages/inbox/test_inbox_queries.py):
session, user, membership, the office's queues/tags/members, the rail counts (cached), the rows, their tags,
and search snippets when searching.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from common.files import stored_file_response
from messages.filters import ASSIGNEE_ME, NONE, ConversationFilter
from messages.models import Channel, ConversationStatus, MediaStatus
from messages.selectors.inbox import (
    InboxLookups,
    InboxPage,
    clamp_page_size,
    inbox_conversations,
    inbox_lookups,
    inbox_page,
    page_signature,
)
from messages.selectors.rail import RailCounts, rail_counts
from messages.selectors.search import SearchSnippets, search_snippets
from messages.selectors.threads import media_get
from messages.timeline import inbox_bulk_actions
from messages.views.bulk import undo_offer
from messages.views.rows import inbox_rows
from offices.tenancy import OfficeRequest, office_view


@dataclass(frozen=True, slots=True)
class RailEntry:
    label: str
    count: int
    url: str
    current: bool
    kind: str = "view"
    color: str = ""


@dataclass
class InboxState:
    """Everything one inbox request works out: filters, the page, search snippets."""

    filterset: ConversationFilter
    lookups: InboxLookups
    page: InboxPage
    snippets: SearchSnippets | None
    params: dict[str, str]

    @property
    def query(self) -> str:
        return urlencode(self.params)


def poll_seconds() -> int:
    """How often open pages poll. Optional setting ``INBOX_POLL_SECONDS`` (the browser tests shorten it)."""
    return int(getattr(settings, "INBOX_POLL_SECONDS", 15))


def inbox_state(request: OfficeRequest, *, with_page: bool = True) -> InboxState:
    office = request.office
    lookups = inbox_lookups(office=office)
    filterset = ConversationFilter(
        request.GET, inbox_conversations(office=office), office=office, user=request.user, lookups=lookups
    )
    size = clamp_page_size(request.GET.get("size"))
    if not filterset.is_valid():
        # An invalid filter (say, another office's tag id) shows nothing, rather than silently dropping it.
        empty = InboxPage([], None, size=size, signature=page_signature([]))
        return InboxState(filterset, lookups, empty, None, {})
    params = filterset.params
    if size != clamp_page_size(None):
        params["size"] = str(size)
    page = InboxPage([], None, size=size, signature=page_signature([]))
    snippets = None
    if with_page:
        page = inbox_page(
            queryset=filterset.page_queryset,
            cursor=request.GET.get("after"),
            size=size,
            search=filterset.search,
        )
        if filterset.search_terms is not None:
            snippets = search_snippets(
                office=office,
                conversation_ids=[c.pk for c in page.conversations],
                terms=filterset.search_terms,
            )
    return InboxState(filterset, lookups, page, snippets, params)


@dataclass(frozen=True, slots=True)
class FilterControl:
    """One filter field, ready to print: a <select> (``options``) or an <input> (``input_type``)."""

    name: str
    label: str
    input_type: str
    value: str
    options: list[tuple[str, str, bool]]
    errors: list[str]


def filter_controls(form: forms.Form) -> list[FilterControl]:
    """The FilterSet's fields without Django's per-option widget templates (a page has ~90 options)."""
    controls = []
    for name, field in form.fields.items():
        if name == "q":
            continue
        raw = form.data.get(name, "") if form.is_bound else ""
        value = "" if raw is None else str(raw)
        errors = [str(e) for e in form.errors.get(name, [])]
        if isinstance(field, forms.ChoiceField):
            choices = cast(Iterable[tuple[Any, Any]], field.choices)  # flat (value, label) pairs here
            options = [(str(v), str(label), str(v) == value) for v, label in choices]
            controls.append(FilterControl(name, str(field.label), "select", value, options, errors))
        else:
            controls.append(FilterControl(name, str(field.label), "date", value, [], errors))
    return controls


def _url(base: str, params: dict[str, str]) -> str:
    return f"{base}?{urlencode(params)}" if params else base


def rail_entries(
    *, base: str, counts: RailCounts, lookups: InboxLookups, current: dict[str, str]
) -> dict[str, list[RailEntry]]:
    view_params = {k: v for k, v in current.items() if k in ("status", "assignee", "queue", "tag", "channel")}

    def entry(label: str, count: int, params: dict[str, str], **extra: str) -> RailEntry:
        return RailEntry(label, count, _url(base, params), current=params == view_params, **extra)

    return {
        "views": [
            entry("My conversations", counts.mine, {"assignee": ASSIGNEE_ME}),
            entry("Unassigned", counts.unassigned, {"assignee": NONE}),
            entry("All open", counts.open, {}),
        ],
        "queues": [
            entry(q.name, counts.by_queue.get(q.pk, 0), {"queue": str(q.pk)}, kind="queue")
            for q in lookups.queues
        ],
        "tags": [
            entry(t.name, counts.by_tag.get(t.pk, 0), {"tag": str(t.pk)}, kind="tag", color=t.color)
            for t in lookups.tags
        ],
        "more": [
            entry("Voicemails", counts.voicemail, {"channel": Channel.VOICEMAIL.value}),
            entry("Snoozed", counts.snoozed, {"status": ConversationStatus.SNOOZED.value}),
            entry("Closed", counts.closed, {"status": ConversationStatus.CLOSED.value}),
        ],
    }


def _context(request: OfficeRequest, state: InboxState) -> dict[str, Any]:
    office = request.office
    base = reverse("messages:inbox", kwargs={"office_slug": office.slug})
    counts = rail_counts(office=office, user=request.user, lookups=state.lookups)
    page = state.page
    terms = state.filterset.search_terms
    next_url = _url(base, {**state.params, "after": page.next_cursor}) if page.next_cursor else ""
    poll_params = {**state.params, "sig": page.signature}
    if page.cursor:
        poll_params["after"] = page.cursor
    return {
        "state": state,
        "filterset": state.filterset,
        "form": state.filterset.form,
        "page": page,
        "rows": inbox_rows(
            page.conversations,
            base_url=base,
            time_zone=office.time_zone,
            snippets=state.snippets.bodies if state.snippets else {},
            words=terms.words if terms else (),
            stems=state.snippets.stems if state.snippets else (),
            digits=terms.digits if terms else "",
            literal=terms.literal if terms else "",
            selectable=request.membership.can_write,
        ),
        "filter_controls": filter_controls(state.filterset.form),
        "rail": rail_entries(base=base, counts=counts, lookups=state.lookups, current=state.params),
        "inbox_url": base,
        "first_url": _url(base, state.params),
        "current_url": _url(base, {**state.params, "after": page.cursor} if page.cursor else state.params),
        "next_url": next_url,
        "is_first_page": page.cursor is None,
        "poll_url": _url(reverse("messages:inbox-updates", kwargs={"office_slug": office.slug}), poll_params),
        "count_url": _url(reverse("messages:inbox-count", kwargs={"office_slug": office.slug}), state.params),
        "return_to": request.get_full_path(),
        "lookups": state.lookups,
        "has_filters": bool({k for k in state.params if k not in ("size",)}),
        "unsearchable_query": state.filterset.unsearchable_query,
        "undo": undo_offer(request) if request.membership.can_write else None,
        "poll_seconds": poll_seconds(),
        "extra_bulk_actions": [
            (label, reverse(url_name, kwargs={"office_slug": office.slug}), element_id)
            for label, url_name, element_id in inbox_bulk_actions()
        ],
    }


@require_GET
@office_view()
def inbox(request: OfficeRequest) -> HttpResponse:
    state = inbox_state(request)
    context = _context(request, state)
    status = 400 if not state.filterset.is_valid() else 200
    if request.htmx and request.htmx.target == "conversation-list":
        return render(request, "messages/_list.html", context, status=status)
    return render(request, "messages/inbox.html", context, status=status)


@require_GET
@office_view()
def inbox_updates(request: OfficeRequest) -> HttpResponse:
    """The live-update poll: fresh rail counts, and whether the rows on screen changed since drawn."""
    state = inbox_state(request)
    context = _context(request, state)
    context["changed"] = state.page.signature != request.GET.get("sig", "")
    return render(request, "messages/_inbox_updates.html", context)


@require_GET
@office_view()
def inbox_count(request: OfficeRequest) -> HttpResponse:
    """How many conversations match the current filter: asked for only when someone selects "all matching"."""
    state = inbox_state(request, with_page=False)
    total = state.filterset.qs.count() if state.filterset.is_valid() else 0
    return render(request, "messages/_match_count.html", {"total": total})


# Images and audio render inline; everything else downloads, so a hostile file can never run in our origin.
INLINE_TYPES = frozenset(
    {
        "image/jpeg",
        "image/png",
        "image/gif",
        "image/webp",
        "audio/mpeg",
        "audio/wav",
        "audio/x-wav",
        "audio/ogg",
    }
)


@require_GET
@office_view()
def media_file(request: OfficeRequest, pk: int) -> FileResponse:
    media = media_get(office=request.office, pk=pk)
    if media is None or media.status != MediaStatus.STORED or not media.file:
        raise Http404("No such media.")
    return stored_file_response(media.file, content_type=media.content_type, inline_types=INLINE_TYPES)
