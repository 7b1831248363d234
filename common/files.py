"""Serving a stored file (an MMS picture, a voicemail) to a member of its office."""

from __future__ import annotations

from collections.abc import Collection

from django.core.files.base import File
from django.http import FileResponse


def stored_file_response(
    file: File[bytes], *, content_type: str, inline_types: Collection[str]
) -> FileResponse:
    """The file, shown in the browser if its type is one of ``inline_types``, otherwise downloaded as bytes.

    Either way the browser may not sniff another type (``nosniff``), and only the member's own browser may
    cache it: the views that call this have already checked the office.
    """
    inline = content_type in inline_types
    response = FileResponse(
        file.open("rb"),
        content_type=content_type if inline else "application/octet-stream",
        as_attachment=not inline,
        filename=(file.name or "file").rsplit("/", 1)[-1],
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=3600"
    return response
