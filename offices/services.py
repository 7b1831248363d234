"""Writes of office (tenant) data."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from offices.models import Membership, Office, Role


@transaction.atomic
def membership_set(*, office: Office, user: AbstractBaseUser, role: Role | str) -> Membership:
    """Add the user to the office with this role, or change their role if already a member."""
    membership, _ = Membership.objects.update_or_create(
        office=office, user_id=user.pk, defaults={"role": role}
    )
    return membership
