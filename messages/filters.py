"""The inbox filters: one django-filter FilterSet for the HTML inbox, bulk "all matching", and the REST API.

Choices for queue, tag and assignee come from the office's own lookups (``InboxLookups``), loaded once per
request. A value that is not one of them (another office's tag id, say) fails validation: callers treat an
invalid filter as "no results" (HTML) or a 400 (API), never as "ignore that filter", which for a bulk action
would widen the selection.
"""

from __future__ import annotations

import functools
import operator
import zoneinfo
from datetime import date, datetime, time, timedelta
from typing import Any

import django_filters
from django import forms
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import QueryDict

from constituents.models import SmsConsent
from messages.models import Channel, Conversation, ConversationStatus, ConversationTag
from messages.selectors.inbox import ACTIVE_STATUSES, InboxLookups
from messages.selectors.search import SearchTerms, search_branches, search_terms_parse
from offices.models import Office

STATUS_ACTIVE = "active"
STATUS_ANY = "any"
STATUS_CHOICES = [
    (STATUS_ACTIVE, "Open or pending"),
    (ConversationStatus.OPEN.value, "Open"),
    (ConversationStatus.PENDING.value, "Pending"),
    (ConversationStatus.SNOOZED.value, "Snoozed"),
    (ConversationStatus.CLOSED.value, "Closed"),
    (STATUS_ANY, "Any status"),
]
ASSIGNEE_ME = "me"
NONE = "none"
DISTRICT_CHOICES = [("in", "In district"), ("out", "Out of district"), ("unknown", "Not known")]
OPTED_OUT_CHOICES = [("yes", "Opted out of texts"), ("no", "Can be texted")]
# The filter parameters, in the order a URL carries them (the rail and pagination rebuild URLs from these).
EARLIEST_DAY = date(1900, 1, 1)
LATEST_DAY = date(9000, 1, 1)
FILTER_PARAMS = (
    "status",
    "assignee",
    "queue",
    "tag",
    "channel",
    "district",
    "opted_out",
    "since",
    "until",
    "q",
)


class ConversationFilter(django_filters.FilterSet):  # type: ignore[misc]  # django-filter ships no types
    status = django_filters.ChoiceFilter(
        label="Status", choices=STATUS_CHOICES, method="filter_status", empty_label=None
    )
    assignee = django_filters.ChoiceFilter(label="Assignee", method="filter_assignee", empty_label="Anyone")
    queue = django_filters.ChoiceFilter(label="Queue", method="filter_queue", empty_label="Any queue")
    tag = django_filters.ChoiceFilter(label="Tag", method="filter_tag", empty_label="Any tag")
    channel = django_filters.ChoiceFilter(
        label="Latest channel",
        choices=Channel.choices,
        field_name="last_message_channel",
        empty_label="Any channel",
    )
    district = django_filters.ChoiceFilter(
        label="District", choices=DISTRICT_CHOICES, method="filter_district", empty_label="In or out"
    )
    opted_out = django_filters.ChoiceFilter(
        label="Texting", choices=OPTED_OUT_CHOICES, method="filter_opted_out", empty_label="Any"
    )
    since = django_filters.DateFilter(
        label="Active from", method="filter_since", widget=forms.DateInput(attrs={"type": "date"})
    )
    until = django_filters.DateFilter(
        label="Active until", method="filter_until", widget=forms.DateInput(attrs={"type": "date"})
    )
    # No max_length: an over-long search is cut to MAX_QUERY_LENGTH by the search parser, not refused.
    q = django_filters.CharFilter(label="Search", method="filter_search")

    class Meta:
        model = Conversation
        fields: list[str] = []

    def __init__(
        self,
        data: QueryDict | dict[str, Any] | None,
        queryset: QuerySet[Conversation],
        *,
        office: Office,
        user: AbstractBaseUser | AnonymousUser,
        lookups: InboxLookups,
        request: Any = None,
    ) -> None:
        values = QueryDict(mutable=True)
        if data is not None:
            for key in FILTER_PARAMS:
                if key in data:
                    # PostgreSQL refuses NUL in text, and Django's form fields refuse it too: drop it.
                    values[key] = str(data.get(key, "")).replace("\x00", "")
        if not values.get("status"):
            values["status"] = STATUS_ACTIVE
        super().__init__(values, queryset=queryset, request=request)
        self.office = office
        self.user = user
        self.lookups = lookups
        self.search_terms: SearchTerms | None = None
        self.unsearched_qs: QuerySet[Conversation] = queryset
        self._search_branches: list[Q] | None = None
        self.filters["assignee"].extra["choices"] = [
            (ASSIGNEE_ME, "Me"),
            (NONE, "Nobody (unassigned)"),
            *[(str(m.user_id), m.user.get_username()) for m in lookups.assignable],
        ]
        self.filters["queue"].extra["choices"] = [
            (NONE, "No queue"),
            *[(str(q.pk), q.name) for q in lookups.queues],
        ]
        self.filters["tag"].extra["choices"] = [(str(t.pk), t.name) for t in lookups.tags]

    @property
    def params(self) -> dict[str, str]:
        """The valid, non-default filter values: what a URL for this view must carry."""
        if not self.is_valid():
            return {}
        out: dict[str, str] = {}
        for key in FILTER_PARAMS:
            value = self.form.cleaned_data.get(key)
            if value in (None, "") or (key == "status" and value == STATUS_ACTIVE):
                continue
            out[key] = value.isoformat() if isinstance(value, date) else str(value)
        return out

    def filter_status(
        self, queryset: QuerySet[Conversation], name: str, value: str
    ) -> QuerySet[Conversation]:
        if value == STATUS_ACTIVE:
            return queryset.filter(status__in=ACTIVE_STATUSES)
        if value == STATUS_ANY:
            return queryset
        return queryset.filter(status=value)

    def filter_assignee(
        self, queryset: QuerySet[Conversation], name: str, value: str
    ) -> QuerySet[Conversation]:
        if value == ASSIGNEE_ME:
            return queryset.filter(assignee_id=self.user.pk)
        if value == NONE:
            return queryset.filter(assignee__isnull=True)
        return queryset.filter(assignee_id=int(value))

    def filter_queue(self, queryset: QuerySet[Conversation], name: str, value: str) -> QuerySet[Conversation]:
        if value == NONE:
            return queryset.filter(queue__isnull=True)
        return queryset.filter(queue_id=int(value))

    def filter_tag(self, queryset: QuerySet[Conversation], name: str, value: str) -> QuerySet[Conversation]:
        tagged = ConversationTag.objects.filter(conversation_id=OuterRef("pk"), tag_id=int(value))
        return queryset.filter(Exists(tagged))

    def filter_district(
        self, queryset: QuerySet[Conversation], name: str, value: str
    ) -> QuerySet[Conversation]:
        lookup = {"in": True, "out": False}.get(value)
        if lookup is None:
            return queryset.filter(constituent__in_district__isnull=True)
        return queryset.filter(constituent__in_district=lookup)

    def filter_opted_out(
        self, queryset: QuerySet[Conversation], name: str, value: str
    ) -> QuerySet[Conversation]:
        if value == "yes":
            return queryset.filter(constituent__sms_consent=SmsConsent.OPTED_OUT)
        return queryset.exclude(constituent__sms_consent=SmsConsent.OPTED_OUT)

    def _office_midnight(self, day: date) -> datetime:
        # Clamped, so year 1 or 9999 cannot overflow when converted to UTC.
        day = min(max(day, EARLIEST_DAY), LATEST_DAY)
        return datetime.combine(day, time.min, tzinfo=zoneinfo.ZoneInfo(self.office.time_zone))

    def filter_since(
        self, queryset: QuerySet[Conversation], name: str, value: date
    ) -> QuerySet[Conversation]:
        return queryset.filter(last_activity_at__gte=self._office_midnight(value))

    def filter_until(
        self, queryset: QuerySet[Conversation], name: str, value: date
    ) -> QuerySet[Conversation]:
        return queryset.filter(
            last_activity_at__lt=self._office_midnight(min(value, LATEST_DAY) + timedelta(days=1))
        )

    def filter_search(
        self, queryset: QuerySet[Conversation], name: str, value: str
    ) -> QuerySet[Conversation]:
        # Recorded here, applied in filter_queryset once every other filter is: see search_branches.
        # A box of only spaces is no search; anything else is a search, and one with nothing to search for
        # (only punctuation, say) matches nothing: see filter_queryset.
        terms = search_terms_parse(value)
        if not terms.is_blank:
            self.search_terms = terms
        return queryset

    def filter_queryset(self, queryset: QuerySet[Conversation]) -> QuerySet[Conversation]:
        queryset = super().filter_queryset(queryset)
        self.unsearched_qs = queryset
        if self.search_terms is not None:
            branches = self.search
            queryset = (
                queryset.filter(functools.reduce(operator.or_, branches)) if branches else queryset.none()
            )
        return queryset

    @property
    def unsearchable_query(self) -> str | None:
        """The text of a search that has nothing to search for (so shows nothing), to say why; else None."""
        if self.search_terms is not None and self.search_terms.is_unsearchable:
            return self.search_terms.text
        return None

    @property
    def search(self) -> list[Q]:
        """The search's alternative conditions, for ``inbox_page(search=...)`` (empty when not searching).

        Runs one query (the matching constituents) the first time."""
        if self.search_terms is None:
            return []
        if self._search_branches is None:
            self._search_branches = search_branches(office=self.office, terms=self.search_terms)
        return self._search_branches

    @property
    def page_queryset(self) -> QuerySet[Conversation]:
        """Every filter but the search: ``inbox_page`` applies the search its own, faster way.

        A search with nothing to search for has no conditions to hand to ``inbox_page``, so the page is empty
        here: it must never fall back to the unsearched inbox."""
        self.qs  # noqa: B018 - filtering runs on first access and sets unsearched_qs
        if self.search_terms is not None and not self.search:
            return self.unsearched_qs.none()
        return self.unsearched_qs
