"""Writes of office (tenant) data.

Memberships are added, changed and removed only here, by the admin forms and the invitation alike, so the
rules hold on every path:

- only a superuser or an admin of the office may change who works in it (``PermissionDenied`` otherwise);
- a person is a member of an office at most once: adding them again, even at the same moment as another
  admin does, is ``AlreadyMember`` (the database's unique constraint decides, inside a savepoint);
- an admin membership gives the account ``is_staff`` (an office admin manages the office in the Django
  admin), and losing the last one takes it away again, unless the account is a superuser;
- an invitation creates the account (with no usable password), its membership and the email with a
  one-time link to choose a password, all or nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from offices.models import Membership, Office, Role

MEMBERSHIP_UNIQUE_CONSTRAINT = "membership_one_per_user_office"


class MembershipError(Exception):
    """A membership change that cannot be made, with a message for the person who asked for it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AlreadyMember(MembershipError):
    def __init__(self, *, user: User, office: Office) -> None:
        super().__init__(f"{user.get_username()} is already a member of this office.")
        self.user = user
        self.office = office


class InvitationError(MembershipError):
    """The invitation was not made (an ambiguous address, an email that could not be sent): nothing was
    written."""


@dataclass(frozen=True, slots=True)
class Invitation:
    membership: Membership
    account_created: bool
    email_sent: bool


def _require_office_manager(*, office: Office, actor: User) -> None:
    if actor.is_superuser:
        return
    if not Membership.objects.filter(office=office, user_id=actor.pk, role=Role.ADMIN).exists():
        raise PermissionDenied("Only an admin of this office changes who works in it.")


def _locked_user(user_id: int) -> User:
    """The account's row, locked until the end of the transaction: one membership change per person at a
    time, so two changes cannot both miss each other's admin membership when deciding ``is_staff``."""
    return User.objects.select_for_update().get(pk=user_id)


def _staff_access_grant(user: User) -> None:
    if not user.is_staff:
        User.objects.filter(pk=user.pk).update(is_staff=True)
        user.is_staff = True


def _staff_access_review(user: User) -> None:
    """After an admin membership is gone: no admin membership left, no admin access (superusers keep it)."""
    if (
        user.is_staff
        and not user.is_superuser
        and not Membership.objects.filter(user_id=user.pk, role=Role.ADMIN).exists()
    ):
        User.objects.filter(pk=user.pk).update(is_staff=False)
        user.is_staff = False


def _violated_constraint(error: IntegrityError) -> str | None:
    diag = getattr(error.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None)


def _is_membership_duplicate(error: IntegrityError) -> bool:
    return _violated_constraint(error) == MEMBERSHIP_UNIQUE_CONSTRAINT


# The partial unique index that keeps a staff phone to one member of an office.
MEMBERSHIP_PHONE_CONSTRAINT = "membership_phone_one_per_office"


class PhoneTaken(MembershipError):
    def __init__(self, *, phone: str) -> None:
        super().__init__(f"Another member of this office already answers calls on {phone}.")


@transaction.atomic
def membership_add(*, office: Office, user: User, role: Role | str, added_by: User) -> Membership:
    """Make the account a member of the office with this role; ``AlreadyMember`` if it is one already."""
    _require_office_manager(office=office, actor=added_by)
    user = _locked_user(int(user.pk))
    try:
        with transaction.atomic():  # a savepoint: a duplicate leaves the caller's transaction usable
            membership = Membership.objects.create(office=office, user=user, role=role)
    except IntegrityError as error:
        if _is_membership_duplicate(error):
            raise AlreadyMember(user=user, office=office) from error
        raise
    if membership.role == Role.ADMIN:
        _staff_access_grant(user)
    return membership


@transaction.atomic
def membership_role_set(
    *, office: Office, membership_id: int, role: Role | str, changed_by: User, phone: str | None = None
) -> Membership:
    """Change a member's role in the office, and their staff phone unless ``phone`` is None
    (``Membership.DoesNotExist`` for another office's membership; ``PhoneTaken`` if another member of the
    office answers calls on that phone)."""
    _require_office_manager(office=office, actor=changed_by)
    user_id = Membership.objects.values_list("user_id", flat=True).get(pk=membership_id, office=office)
    user = _locked_user(user_id)
    membership = Membership.objects.select_for_update().get(pk=membership_id, office=office)
    membership.role = role
    if phone is not None:
        membership.phone = phone
    membership.full_clean(validate_unique=False, validate_constraints=False)
    try:
        with transaction.atomic():  # a savepoint: a taken phone leaves the caller's transaction usable
            membership.save(update_fields=["role", "phone"])
    except IntegrityError as error:
        if _violated_constraint(error) == MEMBERSHIP_PHONE_CONSTRAINT:
            raise PhoneTaken(phone=membership.phone) from error
        raise
    if membership.role == Role.ADMIN:
        _staff_access_grant(user)
    else:
        _staff_access_review(user)
    return membership


@transaction.atomic
def membership_remove(*, office: Office, membership_id: int, removed_by: User) -> bool:
    """Take the member out of the office; False if the office has no such membership (already removed)."""
    _require_office_manager(office=office, actor=removed_by)
    user_id = Membership.objects.filter(pk=membership_id, office=office).values_list("user_id", flat=True)
    if not user_id:
        return False
    user = _locked_user(user_id[0])
    deleted, _ = Membership.objects.filter(pk=membership_id, office=office).delete()
    _staff_access_review(user)
    return bool(deleted)


def invitation_link(*, user: User, base_url: str) -> str:
    """The one-time link that lets the account choose its password (Django's password-reset token: it
    stops working once a password is set, and after ``PASSWORD_RESET_TIMEOUT``)."""
    path = reverse(
        "password_reset_confirm",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )
    return base_url.rstrip("/") + path


def _invitation_send(*, user: User, office: Office, invited_by: User, base_url: str) -> None:
    context = {
        "user": user,
        "office": office,
        "invited_by": invited_by,
        "link": invitation_link(user=user, base_url=base_url),
        "username": user.get_username(),
        "valid_days": max(1, settings.PASSWORD_RESET_TIMEOUT // 86400),
    }
    subject = " ".join(render_to_string("offices/invitation_subject.txt", context).split())
    body = render_to_string("offices/invitation_email.txt", context)
    try:
        EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [user.email]).send()
    except OSError as error:  # smtplib.SMTPException is an OSError, as are refused connections
        raise InvitationError(
            f"The invitation email could not be sent ({error}); nothing was saved."
        ) from error


@transaction.atomic
def membership_invite(
    *,
    office: Office,
    invited_by: User,
    email: str,
    role: Role | str,
    first_name: str = "",
    last_name: str = "",
    base_url: str,
) -> Invitation:
    """Invite the person with this email address to the office.

    No account has the address: create one (username = the address in lower case, no usable password), its
    membership, and email a link to choose a password. An account has it: add that account instead, and
    email the link only if it has never had a password (so inviting again resends it); an account that is
    already a member and has a password is ``AlreadyMember``. The email is sent before the transaction
    commits: if it cannot be sent, nothing is written.
    """
    _require_office_manager(office=office, actor=invited_by)
    email = User.objects.normalize_email(email.strip())
    username = email.lower()
    account_created = False
    user = _account_for_email(email=email, username=username)
    if user is None:
        try:
            with transaction.atomic():  # a savepoint: another admin may be inviting the same address
                user = User(username=username, email=email, first_name=first_name, last_name=last_name)
                user.set_unusable_password()
                user.full_clean(exclude=["password"], validate_unique=False)
                user.save()
            account_created = True
        except ValidationError as error:
            raise InvitationError(
                f"No account can be made for {email!r}: {' '.join(error.messages)}"
            ) from error
        except IntegrityError:
            user = _account_for_email(email=email, username=username)
            if user is None:
                raise
    user = _locked_user(int(user.pk))
    needs_password = not user.has_usable_password()
    if needs_password and not user.email:
        raise InvitationError(
            f"The account {user.get_username()} has no email address to send the invitation to."
        )
    try:
        membership = membership_add(office=office, user=user, role=role, added_by=invited_by)
    except AlreadyMember:
        if not needs_password:
            raise
        membership = Membership.objects.get(office=office, user=user)
    if needs_password:
        _invitation_send(user=user, office=office, invited_by=invited_by, base_url=base_url)
    return Invitation(membership=membership, account_created=account_created, email_sent=needs_password)


def _account_for_email(*, email: str, username: str) -> User | None:
    users = list(User.objects.filter(Q(email__iexact=email) | Q(username=username)).order_by("pk")[:3])
    by_username = [user for user in users if user.get_username() == username]
    if by_username:
        return by_username[0]
    if len(users) > 1:
        raise InvitationError("More than one account uses that email address: give the username instead.")
    return users[0] if users else None
