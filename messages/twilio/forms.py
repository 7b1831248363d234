"""``request.POST`` for Twilio's form-encoded webhooks, parsed in one pass.

Django's ``QueryDict`` appends each parameter through several layers of method calls; for the ~20
parameters of every Twilio webhook that was ~0.2 ms of CPU a request, a tenth of an inbound text's whole
cost in the web process (docs/performance.md, "SMS ingest"). :class:`FormData` is a ``QueryDict`` with the
same contents, the same decoding (UTF-8, falling back to Latin-1 for invalid bytes, as Django does), the same
``DATA_UPLOAD_MAX_NUMBER_FIELDS`` limit and the same immutability; only the building is different.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from django.conf import settings
from django.core.exceptions import TooManyFieldsSent
from django.http import HttpRequest, QueryDict
from django.utils.datastructures import MultiValueDict

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


class FormData(QueryDict):
    """A ``QueryDict`` of a form body, built directly as key -> list of values."""

    def __init__(self, query_string: Any = None, mutable: bool = False, encoding: str | None = None) -> None:
        if not isinstance(query_string, bytes):  # copies and the like: exactly Django's way
            super().__init__(query_string, mutable=mutable, encoding=encoding)
            return
        MultiValueDict.__init__(self)
        self.encoding = encoding or settings.DEFAULT_CHARSET
        try:
            text = query_string.decode(self.encoding)
        except UnicodeDecodeError:
            text = query_string.decode("iso-8859-1")  # as QueryDict does for misbehaving clients
        lists: dict[str, list[str]] = {}
        try:
            for key, value in parse_qsl(
                text,
                keep_blank_values=True,
                encoding=self.encoding,
                max_num_fields=settings.DATA_UPLOAD_MAX_NUMBER_FIELDS,
            ):
                if key in lists:
                    lists[key].append(value)
                else:
                    lists[key] = [value]
        except ValueError as exc:  # parse_qsl's only ValueError here: too many fields
            raise TooManyFieldsSent(
                "The number of GET/POST parameters exceeded settings.DATA_UPLOAD_MAX_NUMBER_FIELDS."
            ) from exc
        dict.update(self, lists)  # a MultiValueDict keeps each key's values as a list
        self._mutable = mutable


def parse_form_body(request: HttpRequest) -> None:
    """Give a form-encoded POST its ``request.POST`` as :class:`FormData`, before anything reads it.

    Anything else (multipart, another charset, a body already parsed) is left to Django. Reading
    ``request.body`` applies ``DATA_UPLOAD_MAX_MEMORY_SIZE`` as Django's own parsing would.
    """
    if (
        request.method != "POST"
        or request.content_type != FORM_CONTENT_TYPE
        or hasattr(request, "_post")
        or (request.encoding is not None and request.encoding.lower() != "utf-8")
    ):
        return
    request._post = FormData(request.body, encoding="utf-8")  # type: ignore[attr-defined]  # Django's cache
    request._files = MultiValueDict()  # type: ignore[attr-defined]  # of the parsed body, not in the stubs
