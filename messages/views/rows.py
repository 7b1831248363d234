"""One inbox row, rendered in Python: the hot loop of the inbox page.

Rendering rows through the template engine (an include, filters and URL reversing per row) cost more CPU than
every query of the page together (docs/performance.md, "Inbox"), so each row is built here with
``format_html``, which escapes every argument. User text that is highlighted goes through ``highlight_text``,
which escapes before it marks. The only markup not escaped is ours: the icons and ``<mark>``.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe

from messages.models import Conversation, Priority
from messages.templatetags.inbox_tags import SNIPPET_CONTEXT, age, highlight_text, snippet_text

# Static SVG paths for the channel icons (our markup, never user data).
_ICON_PATHS = {
    "sms": '<path d="M2 3h12v8H6l-3 3v-3H2z"/>',
    "mms": '<rect x="2" y="3" width="12" height="10"/><path d="M3 12l4-4 3 3 2-2 2 3"/>',
    "call": '<path d="M4 2l3 3-2 2c1 2 2 3 4 4l2-2 3 3-2 2C7 14 2 9 2 4z"/>',
    "voicemail": '<circle cx="4.5" cy="9" r="2.5"/><circle cx="11.5" cy="9" r="2.5"/><path d="M4.5 11.5h7"/>',
    "note": '<path d="M3 2h10v12H3zM5 5h6M5 8h6M5 11h4"/>',
}
_ICON = (
    '<span class="channel channel-{channel}"><svg class="icon" width="16" height="16" viewBox="0 0 16 16" '
    'fill="none" stroke="currentColor" stroke-width="1.5" aria-hidden="true" focusable="false">{path}</svg>'
    '<span class="visually-hidden">{label}: </span></span>'
)


_ICON_MARKUP: dict[str, SafeString] = {
    channel: mark_safe(path)  # noqa: S308 - constant markup defined above
    for channel, path in _ICON_PATHS.items()
}


_UNREAD = mark_safe(
    '<span class="unread-dot" aria-hidden="true"></span><span class="visually-hidden">Unread: </span>'
)


def channel_icon(channel: str, label: str) -> SafeString:
    if not channel:
        return SafeString("")
    return format_html(
        _ICON, channel=channel, path=_ICON_MARKUP.get(channel, _ICON_MARKUP["note"]), label=label
    )


def age_in_words(moment: datetime, now: datetime) -> str:
    """ "5 minutes ago", "3 hours ago", "2 days ago": what a screen reader says for the compact age."""
    seconds = max(0, int((now - moment).total_seconds()))
    for size, unit in ((86400 * 7, "week"), (86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"


@dataclass(frozen=True, slots=True)
class TagChip:
    name: str
    color: str


@dataclass(frozen=True, slots=True)
class InboxRow:
    pk: int
    url: str
    is_unread: bool
    name: SafeString
    plain_name: str
    phone: SafeString
    is_opted_out: bool
    icon: SafeString
    preview: SafeString
    status: str
    status_label: str
    snoozed_until: str
    snoozed_iso: str
    priority_label: str
    queue: str
    tags: list[TagChip]
    assignee: str
    age: str
    age_long: str
    iso: str
    title: str
    selectable: bool = True

    @property
    def html(self) -> SafeString:
        select = (
            format_html(
                '<td class="col-select"><input type="checkbox" name="ids" value="{}" form="bulk-form" '
                'class="row-select" aria-label="Select conversation with {}"></td>',
                self.pk,
                self.plain_name,
            )
            if self.selectable
            else ""
        )
        unread = _UNREAD if self.is_unread else ""
        phone = format_html('<span class="phone muted">{}</span>', self.phone) if self.phone else ""
        opted_out = mark_safe('<span class="badge badge-warn">Opted out</span>') if self.is_opted_out else ""
        meta = []
        if self.status != "open":
            until = (
                format_html(' until <time datetime="{}">{}</time>', self.snoozed_iso, self.snoozed_until)
                if self.snoozed_until
                else ""
            )
            meta.append(
                format_html('<span class="badge badge-{}">{}{}</span>', self.status, self.status_label, until)
            )
        if self.priority_label:
            meta.append(format_html('<span class="badge badge-priority">{}</span>', self.priority_label))
        if self.queue:
            meta.append(format_html('<span class="queue">{}</span>', self.queue))
        meta.extend(
            format_html(
                '<span class="tag"><svg class="swatch" width="10" height="10" viewBox="0 0 10 10" '
                'aria-hidden="true" focusable="false"><circle cx="5" cy="5" r="5" fill="{}"/></svg>'
                "{}</span>",
                tag.color,
                tag.name,
            )
            for tag in self.tags
        )
        assignee = (
            format_html("{}", self.assignee)
            if self.assignee
            else mark_safe('<span class="muted">Unassigned</span>')
        )
        return format_html(
            '<tr class="row{}" data-id="{}" data-url="{}">{}'
            '<td class="col-who">{}<a class="row-link" href="{}">{}</a>{}{}</td>'
            '<td class="col-latest">{}<span class="preview">{}</span><span class="row-meta">{}</span></td>'
            '<td class="col-assignee">{}</td>'
            '<td class="col-age"><time datetime="{}" title="{}"><span aria-hidden="true">{}</span>'
            '<span class="visually-hidden">{}</span></time></td></tr>\n',
            " unread" if self.is_unread else "",
            self.pk,
            self.url,
            select,
            unread,
            self.url,
            self.name,
            phone,
            opted_out,
            self.icon,
            self.preview,
            mark_safe("".join(meta)),  # noqa: S308 - each piece is format_html output
            assignee,
            self.iso,
            self.title,
            self.age,
            self.age_long,
        )


def _highlight_phone(phone: str, digits: str) -> SafeString:
    if not digits or not phone.endswith(digits):
        return conditional_escape(phone)
    head, tail = phone[: -len(digits)], phone[-len(digits) :]
    return mark_safe(f"{conditional_escape(head)}<mark>{conditional_escape(tail)}</mark>")  # noqa: S308


def highlight_literal(text: str, literal: str, context: int = SNIPPET_CONTEXT) -> SafeString:
    """A literal search's hit (an emoji, a symbol) in about ``2 * context`` characters of ``text`` around the
    first one, on one line, every occurrence marked. Escapes each piece first, then marks, like
    ``highlight_text`` (which marks words from a word boundary, and so cannot mark an emoji)."""
    flat = " ".join(text.split())
    first = flat.find(literal) if literal else -1
    if first < 0:
        cut = flat[: context * 2]
        return conditional_escape(cut + ("…" if len(flat) > len(cut) else ""))
    start = max(0, first - context)
    end = min(len(flat), first + len(literal) + context)
    window = flat[start:end]
    pieces = [str(conditional_escape(piece)) for piece in window.split(literal)]
    marked = f"<mark>{conditional_escape(literal)}</mark>".join(pieces)
    return mark_safe(  # noqa: S308 - every piece was escaped above
        ("…" if start else "") + marked + ("…" if end < len(flat) else "")
    )


def inbox_rows(
    conversations: Sequence[Conversation],
    *,
    base_url: str,
    time_zone: str,
    snippets: dict[int, str],
    words: Sequence[str],
    stems: Sequence[str],
    digits: str,
    literal: str = "",
    selectable: bool = True,
) -> list[InboxRow]:
    tz = zoneinfo.ZoneInfo(time_zone)
    now = timezone.now()
    rows = []
    for c in conversations:
        constituent = c.constituent
        local: datetime = c.last_activity_at.astimezone(tz)
        snippet = snippets.get(c.pk, "")
        if literal:
            preview = highlight_literal(snippet or c.last_message_preview, literal)
        elif snippet:
            preview = highlight_text(snippet_text(snippet, stems), stems)
        else:
            preview = highlight_text(c.last_message_preview, stems)
        snoozed = c.snoozed_until.astimezone(tz) if c.status == "snoozed" and c.snoozed_until else None
        rows.append(
            InboxRow(
                pk=c.pk,
                url=f"{base_url}conversations/{c.pk}/",
                is_unread=c.is_unread,
                name=highlight_text(constituent.display_name, words),
                plain_name=constituent.display_name,
                phone=_highlight_phone(constituent.phone, digits)
                if constituent.full_name
                else SafeString(""),
                is_opted_out=constituent.is_opted_out,
                icon=channel_icon(c.last_message_channel, c.get_last_message_channel_display()),
                preview=preview,
                status=c.status,
                status_label=c.get_status_display(),
                snoozed_until=f"{snoozed:%a %-d %b, %H:%M}" if snoozed else "",
                snoozed_iso=snoozed.isoformat() if snoozed else "",
                priority_label=c.get_priority_display() if c.priority >= Priority.HIGH else "",
                queue=c.queue.name if c.queue is not None else "",
                tags=[TagChip(t.name, t.color) for t in getattr(c, "tag_list", ())],
                assignee=c.assignee.get_username() if c.assignee is not None else "",
                age=age(c.last_activity_at),
                age_long=age_in_words(c.last_activity_at, now),
                iso=local.isoformat(),
                title=f"{local:%a %-d %b %Y, %H:%M}",
                selectable=selectable,
            )
        )
    return rows
