"""FormData: the same request.POST as Django's QueryDict, built faster (messages/twilio/forms.py)."""

from __future__ import annotations

import pytest
from django.core.exceptions import TooManyFieldsSent
from django.http import QueryDict
from django.test import RequestFactory

from messages.twilio.forms import FormData, parse_form_body

BODIES = [
    b"",
    b"Body=Hello+world&From=%2B14155550123&To=%2B14155550100",
    b"MediaUrl0=a&MediaUrl0=b&Empty=&Bare&=novalue",  # repeated keys, blanks, no '=', no name
    b"Body=%E2%9C%93+caf%C3%A9+%F0%9F%98%80",  # UTF-8: check mark, accents, an emoji
    b"Body=\xff\xfe+not+utf8&From=x",  # invalid UTF-8 falls back to Latin-1, as Django does
    b"Body=%ff%fe&X=%00nul",  # percent-encoded invalid UTF-8 and a NUL
    b"a=1;b=2&c=%3D%26",  # ';' is not a separator any more; encoded '=' and '&'
    b"Body=" + b"x" * 65536,
]


@pytest.mark.parametrize("body", BODIES)
def test_form_data_equals_django_querydict(body: bytes) -> None:
    ours, django = FormData(body, encoding="utf-8"), QueryDict(body, encoding="utf-8")
    assert list(ours.lists()) == list(django.lists())
    assert ours.encoding == django.encoding
    with pytest.raises(AttributeError, match="immutable"):
        ours["x"] = "y"
    copy = ours.copy()  # mutable copies work as for any QueryDict
    copy["x"] = "y"
    assert copy["x"] == "y"
    assert isinstance(ours, QueryDict)


def test_too_many_fields_is_refused_as_django_refuses_it(settings: object) -> None:
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 3  # type: ignore[attr-defined]  # pytest-django sets any setting
    body = b"a=1&b=2&c=3&d=4"
    with pytest.raises(TooManyFieldsSent):
        QueryDict(body, encoding="utf-8")
    with pytest.raises(TooManyFieldsSent):
        FormData(body, encoding="utf-8")


def test_parse_form_body_only_takes_utf8_form_posts() -> None:
    factory = RequestFactory()
    form = factory.post("/", "Body=hi&Body=again", content_type="application/x-www-form-urlencoded")
    parse_form_body(form)
    assert isinstance(form.POST, FormData)
    assert form.POST.getlist("Body") == ["hi", "again"]

    latin = factory.post("/", "Body=hi", content_type="application/x-www-form-urlencoded; charset=iso-8859-1")
    parse_form_body(latin)
    assert not hasattr(latin, "_post")  # left to Django (which refuses a non-UTF-8 form)

    multipart = factory.post("/", {"Body": "hi"})
    parse_form_body(multipart)
    assert not isinstance(multipart.POST, FormData)
    assert multipart.POST["Body"] == "hi"
