"""Office scoping: office_view resolves the member's office once; everyone else learns nothing."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.test import RequestFactory

from offices.models import IvrMenu, OfficeHoliday, OfficeHours, Role
from offices.selectors import membership_for, office_is_open, office_schedule
from offices.tenancy import OfficeRequest, office_view
from tests import factories

pytestmark = pytest.mark.django_db


@office_view(roles=(Role.ADMIN, Role.STAFF))
def _echo(request: OfficeRequest, pk: int) -> HttpResponse:
    return HttpResponse(f"{request.office.slug}:{request.membership.role}:{pk}")


def _call(user: Any, slug: str) -> HttpResponse:
    request = RequestFactory().get(f"/o/{slug}/x/")
    request.user = user
    return _echo(request, office_slug=slug, pk=7)


def test_a_member_reaches_the_view_with_the_office_and_membership_set() -> None:
    membership: Any = factories.MembershipFactory.create(role=Role.STAFF)
    response = _call(membership.user, membership.office.slug)
    assert response.content.decode() == f"{membership.office.slug}:staff:7"


def test_another_offices_member_gets_the_same_404_as_a_missing_office() -> None:
    membership: Any = factories.MembershipFactory.create(role=Role.ADMIN)
    other: Any = factories.OfficeFactory.create()
    with pytest.raises(Http404) as foreign:
        _call(membership.user, other.slug)
    with pytest.raises(Http404) as missing:
        _call(membership.user, "no-such-office")
    assert str(foreign.value) == str(missing.value)


def test_a_member_whose_role_may_not_act_gets_403() -> None:
    from django.core.exceptions import PermissionDenied

    membership: Any = factories.MembershipFactory.create(role=Role.OFFICIAL)
    with pytest.raises(PermissionDenied):
        _call(membership.user, membership.office.slug)


def test_an_anonymous_visitor_is_sent_to_the_login_page() -> None:
    office: Any = factories.OfficeFactory.create()
    response = _call(AnonymousUser(), office.slug)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert membership_for(user=AnonymousUser(), slug=office.slug) is None


def test_the_in_memory_schedule_agrees_with_the_query_at_every_quarter_hour() -> None:
    office: Any = factories.OfficeFactory.create(time_zone="America/Chicago")
    OfficeHours.objects.create(office=office, weekday=0, opens_at=dt.time(9), closes_at=dt.time(12))
    OfficeHours.objects.create(office=office, weekday=0, opens_at=dt.time(13), closes_at=dt.time(17, 30))
    OfficeHoliday.objects.create(office=office, date=dt.date(2026, 12, 14), name="Closed")
    schedule = office_schedule(office=office)
    start = dt.datetime(2026, 12, 7, 0, 0, tzinfo=dt.UTC)  # a Monday, then the next (a holiday)
    for quarter in range(4 * 24 * 8):
        at = start + dt.timedelta(minutes=15 * quarter)
        assert schedule.is_open(at) == office_is_open(office=office, at=at), at


def test_ivr_dial_numbers_use_the_same_e164_rule_as_office_numbers() -> None:
    office: Any = factories.OfficeFactory.create()
    menu = IvrMenu(office=office, name="Main", is_main=True, dial_numbers=["+14155550100", "415-555-0101"])
    with pytest.raises(ValidationError) as excinfo:
        menu.full_clean()
    assert "E.164" in str(excinfo.value)
