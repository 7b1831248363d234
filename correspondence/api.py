"""``/api/v1/offices/<slug>/letters/`` and ``…/bulk-replies/``: the same services as the pages.

Authentication and membership as the rest of the API (``OfficeMemberApi``): a non-member gets the same 404 as
a missing office. An official's role is read-only: every write answers 403. An id of another office anywhere
in a request answers 404 for the whole request, and nothing is created.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from correspondence import selectors
from correspondence.models import BulkReply, FormLetter
from correspondence.services import bulk as bulk_service
from correspondence.services import letters as letter_service
from messages.api.views import OfficeMemberApi


class _WriteApi(OfficeMemberApi):
    def _writer(self) -> None:
        if not self.membership.can_write:
            raise PermissionDenied("Your role in this office is read-only.")

    @property
    def actor(self) -> AbstractBaseUser:
        """The member making the request (membership was checked in ``initial``)."""
        return self.membership.user


def _rejected(exc: letter_service.LetterRejected | bulk_service.BulkReplyRejected) -> ValidationError:
    return ValidationError({exc.field or "detail": [exc.reason]})


class LetterSerializer(serializers.Serializer[FormLetter]):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(max_length=letter_service.NAME_MAX)
    body = serializers.CharField(max_length=20000, trim_whitespace=False)
    tags = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False, max_length=100)


def _letter_json(letter: FormLetter) -> dict[str, Any]:
    latest = letter_service.latest_version(letter=letter)
    approved = letter.approved_version
    return {
        "id": letter.pk,
        "name": letter.name,
        "status": letter.status,
        "tags": [tag.pk for tag in letter.tags.all()],
        "latest_version": {"number": latest.number, "status": latest.status, "body": latest.body},
        "approved_version": (
            {
                "number": approved.number,
                "body": approved.body,
                "approved_at": approved.approved_at,
                "approved_by": approved.approved_by_id,
            }
            if approved is not None
            else None
        ),
        "created_at": letter.created_at,
        "updated_at": letter.updated_at,
    }


class LetterListApi(_WriteApi):
    def get(self, request: Request, office_slug: str) -> Response:
        return Response(
            {"results": [_letter_json(letter) for letter in selectors.letters(office=self.office)]}
        )

    def post(self, request: Request, office_slug: str) -> Response:
        self._writer()
        data = LetterSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            letter = letter_service.letter_create(
                office=self.office,
                actor=self.actor,
                name=data.validated_data["name"],
                body=data.validated_data["body"],
                tag_ids=data.validated_data.get("tags", []),
            )
        except letter_service.LetterNotFound as exc:
            raise NotFound(exc.reason) from exc
        except letter_service.LetterRejected as exc:
            raise _rejected(exc) from exc
        return Response(_letter_json(letter), status=status.HTTP_201_CREATED)


class LetterDetailApi(_WriteApi):
    def _letter(self, pk: int) -> FormLetter:
        try:
            return letter_service.letter_get(office=self.office, pk=pk)
        except letter_service.LetterNotFound as exc:
            raise NotFound("No such letter.") from exc

    def get(self, request: Request, office_slug: str, pk: int) -> Response:
        return Response(_letter_json(self._letter(pk)))

    def patch(self, request: Request, office_slug: str, pk: int) -> Response:
        """Rename, retag, or give a new body (a new draft version; the approved one keeps sending)."""
        self._writer()
        self._letter(pk)
        data = LetterSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        try:
            letter = letter_service.letter_update(
                office=self.office,
                actor=self.actor,
                pk=pk,
                name=data.validated_data.get("name"),
                body=data.validated_data.get("body"),
                tag_ids=data.validated_data.get("tags"),
            )
        except letter_service.LetterNotFound as exc:
            raise NotFound(exc.reason) from exc
        except letter_service.LetterRejected as exc:
            raise _rejected(exc) from exc
        return Response(_letter_json(letter))

    put = patch


class LetterApproveApi(_WriteApi):
    def post(self, request: Request, office_slug: str, pk: int) -> Response:
        self._writer()
        version = request.data.get("version") if hasattr(request.data, "get") else None
        if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
            raise ValidationError({"version": ["Give the version number you read, as an integer."]})
        try:
            approval = letter_service.letter_approve(
                office=self.office, membership=self.membership, pk=pk, version_number=version
            )
        except letter_service.LetterNotFound as exc:
            raise NotFound(exc.reason) from exc
        except letter_service.LetterApprovalNotAllowed as exc:
            raise PermissionDenied(exc.reason) from exc
        except letter_service.LetterRejected as exc:
            raise _rejected(exc) from exc
        return Response(_letter_json(approval.letter))


class BulkReplyCreateSerializer(serializers.Serializer[Any]):
    audience = serializers.JSONField()
    letter = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    body = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False, max_length=20000)
    send_at = serializers.DateTimeField(required=False, allow_null=True)
    skip_replied = serializers.BooleanField(required=False, default=False)
    start = serializers.BooleanField(required=False, default=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("letter") is not None and attrs.get("body"):
            raise ValidationError({"body": ["Give a letter or a body, not both."]})
        return attrs


def _bulk_json(bulk: BulkReply, *, counts: dict[str, int] | None = None) -> dict[str, Any]:
    return {
        "id": bulk.pk,
        "status": bulk.status,
        "letter": bulk.letter_version.letter_id if bulk.letter_version is not None else None,
        "letter_version": bulk.letter_version.number if bulk.letter_version is not None else None,
        "audience": bulk.audience,
        "send_at": bulk.send_at,
        "recipient_count": bulk.recipient_count,
        "exclusions": bulk.exclusions,
        "prepared": bulk.prepared_at is not None,
        "created_at": bulk.created_at,
        "started_at": bulk.started_at,
        "finished_at": bulk.finished_at,
        **({"counts": counts} if counts is not None else {}),
    }


class BulkReplyListApi(_WriteApi):
    def get(self, request: Request, office_slug: str) -> Response:
        rows = selectors.bulk_replies(office=self.office)[:100]
        return Response({"results": [_bulk_json(bulk) for bulk in rows]})

    def post(self, request: Request, office_slug: str) -> Response:
        """Preview (``start`` false: a draft) or start a bulk reply. 201 with the id and the counts."""
        self._writer()
        data = BulkReplyCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        try:
            audience = bulk_service.Audience.from_json(values["audience"])
            with transaction.atomic():
                created = bulk_service.bulk_reply_create(
                    office=self.office,
                    actor=self.actor,
                    audience=audience,
                    letter_id=values.get("letter"),
                    body=values.get("body") if values.get("letter") is None else None,
                    send_at=values.get("send_at"),
                    skip_replied=values["skip_replied"],
                    start=values["start"],
                )
        except bulk_service.BulkReplyNotFound as exc:
            raise NotFound(exc.reason) from exc
        except bulk_service.BulkReplyRejected as exc:
            raise _rejected(exc) from exc
        return Response(_bulk_json(created), status=status.HTTP_201_CREATED)


class BulkReplyDetailApi(_WriteApi):
    def get(self, request: Request, office_slug: str, pk: int) -> Response:
        try:
            found = bulk_service.bulk_reply_get(office=self.office, pk=pk)
        except bulk_service.BulkReplyNotFound as exc:
            raise NotFound("No such bulk reply.") from exc
        progress = selectors.bulk_reply_progress(office=self.office, bulk=found)
        return Response(_bulk_json(found, counts=progress.counts))


class _BulkControlApi(_WriteApi):
    action = ""

    def post(self, request: Request, office_slug: str, pk: int) -> Response:
        self._writer()
        services = {
            "start": bulk_service.bulk_reply_start,
            "pause": bulk_service.bulk_reply_pause,
            "resume": bulk_service.bulk_reply_resume,
            "cancel": bulk_service.bulk_reply_cancel,
        }
        try:
            services[self.action](office=self.office, actor=self.actor, pk=pk)
            found = bulk_service.bulk_reply_get(office=self.office, pk=pk)
        except bulk_service.BulkReplyNotFound as exc:
            raise NotFound("No such bulk reply.") from exc
        except bulk_service.BulkReplyRejected as exc:
            return Response({"detail": exc.reason}, status=status.HTTP_409_CONFLICT)
        return Response(_bulk_json(found))


class BulkReplyStartApi(_BulkControlApi):
    action = "start"


class BulkReplyPauseApi(_BulkControlApi):
    action = "pause"


class BulkReplyResumeApi(_BulkControlApi):
    action = "resume"


class BulkReplyCancelApi(_BulkControlApi):
    action = "cancel"
