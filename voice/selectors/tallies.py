"""Call-in day tallies: counts per position, in district or not, for the live page and issue summaries."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum

from messages.models import Tag
from offices.models import Office
from voice.models import CallInCampaign, CallInPosition, CallInTally


def _counts(prefix: str = "") -> dict[str, Any]:
    """The aggregate expressions of one summary; ``prefix`` is the path to CallInTally ("" or "tallies__")."""

    def q(**lookups: object) -> Q:
        return Q(**{f"{prefix}{name}": value for name, value in lookups.items()})

    def count(condition: Q) -> Count:
        return Count(f"{prefix}id", filter=condition)

    # Callers who withheld their number cannot be recognised when they call again: counted apart.
    known = ~q(caller_phone="")
    support, oppose = q(position=CallInPosition.SUPPORT), q(position=CallInPosition.OPPOSE)
    inside, outside = q(in_district=True), q(in_district=False)
    return {
        "support": count(known & support),
        "oppose": count(known & oppose),
        "support_in_district": count(known & support & inside),
        "oppose_in_district": count(known & oppose & inside),
        "support_out_of_district": count(known & support & outside),
        "oppose_out_of_district": count(known & oppose & outside),
        "withheld_support": count(~known & support),
        "withheld_oppose": count(~known & oppose),
        "calls": Sum(f"{prefix}call_count"),
    }


@dataclass(frozen=True, slots=True)
class TallySummary:
    """Positions of callers recognised by phone (each counted once), plus withheld-number calls apart."""

    campaign_id: int
    title: str
    is_active: bool
    support: int = 0
    oppose: int = 0
    support_in_district: int = 0
    oppose_in_district: int = 0
    support_out_of_district: int = 0
    oppose_out_of_district: int = 0
    withheld_support: int = 0
    withheld_oppose: int = 0
    calls: int = 0

    @property
    def callers(self) -> int:
        return self.support + self.oppose

    @property
    def support_unknown_district(self) -> int:
        return self.support - self.support_in_district - self.support_out_of_district

    @property
    def oppose_unknown_district(self) -> int:
        return self.oppose - self.oppose_in_district - self.oppose_out_of_district

    @property
    def support_percent(self) -> int:
        return round(100 * self.support / self.callers) if self.callers else 0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            callers=self.callers,
            support_unknown_district=self.support_unknown_district,
            oppose_unknown_district=self.oppose_unknown_district,
        )
        return data


def call_in_campaigns(*, office: Office) -> QuerySet[CallInCampaign]:
    return CallInCampaign.objects.filter(office=office).select_related("tag", "switched_by")


def call_in_campaign_get(*, office: Office, pk: int) -> CallInCampaign | None:
    return call_in_campaigns(office=office).filter(pk=pk).first()


def tally_summary(*, office: Office, campaign: CallInCampaign) -> TallySummary:
    """One campaign's counts, in one query."""
    totals = CallInTally.objects.filter(office=office, campaign=campaign).aggregate(**_counts())
    return TallySummary(
        campaign.pk, campaign.title, campaign.is_active, **{key: value or 0 for key, value in totals.items()}
    )


def tally_summaries(*, office: Office) -> list[TallySummary]:
    """Every campaign of the office with its counts, newest first, in one query."""
    rows = call_in_campaigns(office=office).annotate(**_counts("tallies__"))
    return [
        TallySummary(row.pk, row.title, row.is_active, **{key: getattr(row, key) or 0 for key in _counts()})
        for row in rows
    ]


def call_in_recent_tallies(
    *, office: Office, campaign: CallInCampaign, limit: int = 50
) -> QuerySet[CallInTally]:
    return (
        CallInTally.objects.filter(office=office, campaign=campaign)
        .select_related("constituent")
        .order_by("-updated_at", "-id")[:limit]
    )


def issue_call_in_positions(*, office: Office, tag: Tag) -> dict[str, int]:
    """Call-in positions on one issue across all its campaigns, for the issue summaries (recognised callers;
    a caller who called in to two campaigns on the issue counts in each)."""
    totals = CallInTally.objects.filter(office=office, campaign__tag=tag).aggregate(**_counts())
    return {key: value or 0 for key, value in totals.items()}


@dataclass(frozen=True, slots=True)
class IssueCallInSummary:
    """Call-in positions on one issue (tag) across its campaigns; each campaign counts a caller once."""

    tag_id: int
    name: str
    color: str
    campaigns: int
    is_live: bool
    support: int = 0
    oppose: int = 0
    support_in_district: int = 0
    oppose_in_district: int = 0
    calls: int = 0

    @property
    def callers(self) -> int:
        return self.support + self.oppose

    @property
    def support_percent(self) -> int:
        return round(100 * self.support / self.callers) if self.callers else 0


def issue_call_in_summaries(*, office: Office) -> list[IssueCallInSummary]:
    """Every issue the office has run a call-in campaign on, with its positions (as
    :func:`issue_call_in_positions` counts them), most callers first. One query."""
    counts = _counts("call_in_campaigns__tallies__")
    fields = ("support", "oppose", "support_in_district", "oppose_in_district", "calls")
    rows = (
        Tag.objects.filter(
            office=office, pk__in=CallInCampaign.objects.filter(office=office).values("tag_id")
        )
        .annotate(
            campaign_count=Count("call_in_campaigns", distinct=True),
            live_count=Count("call_in_campaigns", filter=Q(call_in_campaigns__is_active=True), distinct=True),
            **{key: counts[key] for key in fields},
        )
        .order_by()
    )
    summaries = [
        IssueCallInSummary(
            row.pk,
            row.name,
            row.color,
            getattr(row, "campaign_count"),  # noqa: B009 - an annotation, unknown to the type checker
            getattr(row, "live_count") > 0,  # noqa: B009 - likewise
            **{key: getattr(row, key) or 0 for key in fields},
        )
        for row in rows
    ]
    return sorted(summaries, key=lambda s: (-s.callers, s.name.lower()))
