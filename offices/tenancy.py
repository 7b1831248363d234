"""Office scoping for views: ``/o/<office_slug>/...`` resolves the member's office once, or 404s.

Non-members get the same 404 as a missing office, so the URL space leaks nothing about other offices.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar, cast

from django.contrib.auth.models import User
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django_htmx.middleware import HtmxDetails

from offices.models import Membership, Office, Role
from offices.selectors import membership_for

P = ParamSpec("P")
View = Callable[Concatenate[HttpRequest, P], HttpResponse]


class OfficeRequest(HttpRequest):
    """The request an ``office_view`` hands its view: a logged-in member, with the office resolved once.

    Views annotate ``request: OfficeRequest`` and read ``request.office`` with no cast: the decorator is the
    only place that sets these attributes, and it sets them before the view runs.
    """

    office: Office
    membership: Membership
    user: User  # never anonymous: the decorator redirects those to the login page
    htmx: HtmxDetails  # django_htmx's middleware


R = TypeVar("R", bound=HttpResponseBase)


def office_view(
    *, roles: tuple[Role, ...] = (Role.ADMIN, Role.STAFF, Role.OFFICIAL)
) -> Callable[[Callable[Concatenate[OfficeRequest, P], R]], Callable[..., R | HttpResponse]]:
    """Require membership of the URL's office (404 otherwise) and one of ``roles`` (403 otherwise).

    The wrapped view takes an :class:`OfficeRequest` and the URL's other arguments; the URL's
    ``office_slug`` is consumed here.
    """

    def decorator(view: Callable[Concatenate[OfficeRequest, P], R]) -> Callable[..., R | HttpResponse]:
        @functools.wraps(view)
        def wrapper(
            request: HttpRequest, office_slug: str, *args: P.args, **kwargs: P.kwargs
        ) -> R | HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            membership = membership_for(user=request.user, slug=office_slug)
            if membership is None:
                raise Http404("No such office.")
            if membership.role not in roles:
                raise PermissionDenied("Your role in this office cannot do that.")
            office_request = cast(OfficeRequest, request)  # the one place these attributes are set
            office_request.office = membership.office
            office_request.membership = membership
            return view(office_request, *args, **kwargs)

        return wrapper

    return decorator


WRITE_ROLES = (Role.ADMIN, Role.STAFF)
