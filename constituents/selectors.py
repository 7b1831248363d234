"""Reads of constituent data. Every function takes the office."""

from __future__ import annotations

from django.db.models import QuerySet

from constituents.models import ConsentEvent, Constituent
from offices.models import Office


def constituent_get(*, office: Office, pk: int) -> Constituent | None:
    return Constituent.objects.filter(office=office, pk=pk).first()


def constituent_list(*, office: Office) -> QuerySet[Constituent]:
    return Constituent.objects.filter(office=office)


def consent_history(*, office: Office, constituent_id: int) -> QuerySet[ConsentEvent]:
    return ConsentEvent.objects.filter(office=office, constituent_id=constituent_id).select_related(
        "changed_by"
    )
