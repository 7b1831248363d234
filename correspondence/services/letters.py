"""The form-letter library: write, request approval, approve, retire. Every function takes the office.

Versions are never edited once written: a new body is a new version (a draft), and the approved version keeps
being the letter that is sent until another version is approved. Only members who may approve letters
(``Membership.may_approve_letters``) approve; staff request approval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from correspondence import merge
from correspondence.models import FormLetter, FormLetterVersion, VersionStatus
from messages.models import Tag
from messages.services.rules import ForeignObjectNotFound
from offices.models import Membership, Office


class LetterRejected(Exception):
    """The letter cannot be saved or changed; ``reason`` is written for staff, ``field`` names the input."""

    def __init__(self, reason: str, *, field: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field


class LetterNotFound(LetterRejected, ForeignObjectNotFound):
    """The letter, or a tag, is not this office's (answered as a 404)."""


class LetterApprovalNotAllowed(LetterRejected):
    """The member may not approve letters (answered as a 403)."""


NAME_MAX = 120


def _checked_body(body: str) -> str:
    if not body.strip():
        raise LetterRejected("Write the letter's text.", field="body")
    try:
        merge.parse(body)
    except merge.TemplateError as exc:
        raise LetterRejected(str(exc), field="body") from exc
    return body


def _checked_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise LetterRejected("Give the letter a name.", field="name")
    if len(name) > NAME_MAX:
        raise LetterRejected(f"Names are limited to {NAME_MAX} characters.", field="name")
    return name


def _tags(office: Office, tag_ids: Sequence[int]) -> list[Tag]:
    ids = set(tag_ids)
    tags = list(Tag.objects.filter(office=office, pk__in=ids))
    if len(tags) != len(ids):
        raise LetterNotFound("No such tag.", field="tags")
    return tags


def letter_get(*, office: Office, pk: int) -> FormLetter:
    letter = FormLetter.objects.filter(office=office, pk=pk).select_related("approved_version").first()
    if letter is None:
        raise LetterNotFound("No such letter.")
    return letter


def latest_version(*, letter: FormLetter) -> FormLetterVersion:
    version = (
        FormLetterVersion.objects.filter(letter=letter, office_id=letter.office_id)
        .order_by("-number")
        .first()
    )
    if version is None:  # a letter is created with its first version, in one transaction
        raise LetterNotFound("This letter has no versions.")
    return version


@transaction.atomic
def letter_create(
    *, office: Office, actor: AbstractBaseUser | None, name: str, body: str, tag_ids: Sequence[int] = ()
) -> FormLetter:
    """A new letter with its first version, a draft."""
    name, body, tags = _checked_name(name), _checked_body(body), _tags(office, tag_ids)
    actor_id = actor.pk if actor is not None else None
    try:
        with transaction.atomic():
            letter = FormLetter.objects.create(office=office, name=name, created_by_id=actor_id)
    except IntegrityError as exc:
        raise LetterRejected(f"This office already has a letter named “{name}”.", field="name") from exc
    letter.tags.set(tags)
    FormLetterVersion.objects.create(
        office=office, letter=letter, number=1, body=body, created_by_id=actor_id
    )
    return letter


@transaction.atomic
def letter_update(
    *,
    office: Office,
    actor: AbstractBaseUser | None,
    pk: int,
    name: str | None = None,
    body: str | None = None,
    tag_ids: Sequence[int] | None = None,
) -> FormLetter:
    """Rename, retag, or give a new body. A new body is a new draft version; the approved one still sends."""
    letter = letter_get(office=office, pk=pk)
    letter = FormLetter.objects.select_for_update().get(pk=letter.pk)
    if letter.retired_at is not None:
        raise LetterRejected("This letter is retired. Copy its text into a new letter to use it again.")
    changed: list[str] = []
    if name is not None and _checked_name(name) != letter.name:
        letter.name = _checked_name(name)
        changed.append("name")
    if tag_ids is not None:
        letter.tags.set(_tags(office, tag_ids))
    if body is not None:
        latest = latest_version(letter=letter)
        if _checked_body(body) != latest.body:
            FormLetterVersion.objects.create(
                office=office,
                letter=letter,
                number=latest.number + 1,
                body=body,
                created_by_id=actor.pk if actor is not None else None,
            )
    letter.updated_at = timezone.now()
    try:
        with transaction.atomic():
            letter.save(update_fields=[*changed, "updated_at"])
    except IntegrityError as exc:
        raise LetterRejected(
            f"This office already has a letter named “{letter.name}”.", field="name"
        ) from exc
    return letter


@transaction.atomic
def approval_request(*, office: Office, actor: AbstractBaseUser, pk: int) -> FormLetterVersion:
    """Ask an approver to approve the letter's latest version."""
    letter = FormLetter.objects.select_for_update().filter(office=office, pk=pk).first()
    if letter is None:
        raise LetterNotFound("No such letter.")
    version = latest_version(letter=letter)
    if version.status == VersionStatus.APPROVED:
        raise LetterRejected("The latest version is already approved.")
    if version.status == VersionStatus.DRAFT:
        version.status = VersionStatus.PENDING
        version.approval_requested_by_id = actor.pk
        version.approval_requested_at = timezone.now()
        version.save(update_fields=["status", "approval_requested_by", "approval_requested_at"])
    return version


@dataclass(frozen=True, slots=True)
class Approval:
    letter: FormLetter
    version: FormLetterVersion
    superseded: FormLetterVersion | None


@transaction.atomic
def letter_approve(
    *, office: Office, membership: Membership, pk: int, version_number: int | None = None
) -> Approval:
    """Approve the letter's latest version (or the one named, which must be the latest): sent from now on."""
    letter = FormLetter.objects.select_for_update().filter(office=office, pk=pk).first()
    if letter is None:
        raise LetterNotFound("No such letter.")
    if membership.office_id != office.pk or not membership.may_approve_letters:
        raise LetterApprovalNotAllowed(
            "Only an admin, or a member allowed to approve letters, can approve them."
        )
    if letter.retired_at is not None:
        raise LetterRejected("This letter is retired.")
    version = latest_version(letter=letter)
    if version_number is not None and version_number != version.number:
        raise LetterRejected(
            f"Version {version_number} is not the latest (version {version.number} is): "
            "approve what you read."
        )
    if version.status == VersionStatus.APPROVED:
        return Approval(letter=letter, version=version, superseded=None)
    now = timezone.now()
    previous = (
        FormLetterVersion.objects.filter(pk=letter.approved_version_id).first()
        if letter.approved_version_id
        else None
    )
    if previous is not None:
        previous.status = VersionStatus.SUPERSEDED
        previous.save(update_fields=["status"])
    version.status = VersionStatus.APPROVED
    version.approved_by_id = membership.user_id
    version.approved_at = now
    version.save(update_fields=["status", "approved_by", "approved_at"])
    letter.approved_version = version
    letter.updated_at = now
    letter.save(update_fields=["approved_version", "updated_at"])
    return Approval(letter=letter, version=version, superseded=previous)


@transaction.atomic
def letter_retire(*, office: Office, actor: AbstractBaseUser, pk: int) -> FormLetter:
    """No longer offered for new bulk replies; bulk replies already sending it carry on."""
    letter = FormLetter.objects.select_for_update().filter(office=office, pk=pk).first()
    if letter is None:
        raise LetterNotFound("No such letter.")
    if letter.retired_at is None:
        letter.retired_at = timezone.now()
        letter.retired_by_id = actor.pk
        letter.save(update_fields=["retired_at", "retired_by"])
    return letter
