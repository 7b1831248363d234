"""The tenant: an elected official's office, who works in it, and the numbers constituents reach it on."""

from __future__ import annotations

import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

E164_VALIDATOR = RegexValidator(
    r"^\+[1-9]\d{1,14}$", "Enter a phone number in E.164 form, e.g. +12025550123."
)
TWILIO_ACCOUNT_SID_VALIDATOR = RegexValidator(
    r"^AC[0-9a-f]{32}$", "A Twilio account SID is AC + 32 hex digits."
)
MESSAGING_SERVICE_SID_VALIDATOR = RegexValidator(
    r"^MG[0-9a-f]{32}$", "A messaging service SID is MG + 32 hex digits."
)


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not a known IANA time zone, e.g. America/New_York.")


class Office(models.Model):
    """The tenant. Every tenant-owned row carries an ``office`` foreign key."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60, unique=True)
    official_name = models.CharField(max_length=200, help_text="e.g. Jane Doe")
    official_title = models.CharField(
        max_length=100, help_text="e.g. Representative, Senator, Council Member"
    )
    district_label = models.CharField(max_length=100, blank=True, help_text="e.g. CA-12, Ward 3")
    time_zone = models.CharField(max_length=64, default="America/New_York", validators=[validate_time_zone])
    sms_help_text = models.CharField(
        max_length=320,
        blank=True,
        help_text="Sent in reply to HELP or INFO. Say who you are and how to opt out.",
    )
    sms_auto_ack_text = models.CharField(
        max_length=320,
        blank=True,
        help_text="Sent once per conversation to acknowledge a new text. Blank turns it off.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def official_display(self) -> str:
        return f"{self.official_title} {self.official_name}".strip()


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"  # configures the office
    STAFF = "staff", "Staff"  # triages and replies
    OFFICIAL = "official", "Elected official"  # reads; never replies or changes anything


MEMBERSHIP_PHONE_UNIQUE_CONSTRAINT = "membership_phone_one_per_office"

# Who may own (be assigned) a conversation: admins and staff. Officials only read.
ASSIGNABLE_ROLES = (Role.ADMIN, Role.STAFF)


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    office = models.ForeignKey(Office, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.STAFF)
    phone = models.CharField(
        max_length=16,
        blank=True,
        validators=[E164_VALIDATOR],
        help_text="The phone this member answers forwarded calls on, in E.164 form, e.g. +12025550123. "
        "A call answered on it shows in the inbox as answered by them.",
    )
    can_approve_letters = models.BooleanField(
        default=False,
        help_text="May approve form letters for bulk replies (admins always may), e.g. the legislative "
        "director.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "office"], name="membership_one_per_user_office"),
            models.CheckConstraint(condition=models.Q(role__in=Role.values), name="membership_role_valid"),
            # One member per phone in an office: a forwarded call answered on it names that member.
            models.UniqueConstraint(
                fields=["office", "phone"],
                condition=~models.Q(phone=""),
                name=MEMBERSHIP_PHONE_UNIQUE_CONSTRAINT,
                violation_error_message="Another member of this office already answers calls on this phone.",
            ),
            models.CheckConstraint(
                condition=models.Q(phone="") | models.Q(phone__regex=r"^\+[1-9][0-9]{1,14}$"),
                name="membership_phone_e164",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.office} ({self.role})"

    @property
    def display_name(self) -> str:
        """The member as staff name them: the account's full name, else its username."""
        return self.user.get_full_name() or self.user.get_username()

    @property
    def is_assignable(self) -> bool:
        """May own a conversation of this office (see ``ASSIGNABLE_ROLES``)."""
        return self.role in ASSIGNABLE_ROLES

    @property
    def can_write(self) -> bool:
        return self.role in (Role.ADMIN, Role.STAFF)

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def may_approve_letters(self) -> bool:
        """Admins, and staff given the right; an official never (they only read)."""
        return self.role == Role.ADMIN or (self.role == Role.STAFF and self.can_approve_letters)


class TwilioAccount(models.Model):
    """A Twilio (sub)account an office sends from. Absent, the deployment's own account is used."""

    office = models.ForeignKey(Office, on_delete=models.CASCADE, related_name="twilio_accounts")
    account_sid = models.CharField(max_length=34, unique=True, validators=[TWILIO_ACCOUNT_SID_VALIDATOR])
    # Stored as given: encrypt at rest at the database/volume level (docs/deployment.md).
    auth_token = models.CharField(max_length=64)
    label = models.CharField(max_length=100, blank=True)

    def __str__(self) -> str:
        return self.label or self.account_sid


class NumberType(models.TextChoices):
    LONG_CODE = "long_code", "Local long code"
    TOLL_FREE = "toll_free", "Toll-free"
    SHORT_CODE = "short_code", "Short code"


class OfficePhoneNumber(models.Model):
    office = models.ForeignKey(Office, on_delete=models.CASCADE, related_name="phone_numbers")
    e164 = models.CharField("number", max_length=16, unique=True, validators=[E164_VALIDATOR])
    label = models.CharField(max_length=100, blank=True)
    number_type = models.CharField(max_length=16, choices=NumberType.choices, default=NumberType.LONG_CODE)
    sms_enabled = models.BooleanField(default=True)
    voice_enabled = models.BooleanField(default=True)
    messaging_service_sid = models.CharField(
        max_length=34, blank=True, validators=[MESSAGING_SERVICE_SID_VALIDATOR]
    )
    twilio_account = models.ForeignKey(
        TwilioAccount, null=True, blank=True, on_delete=models.PROTECT, related_name="phone_numbers"
    )
    send_rate = models.FloatField(
        "bulk send rate (segments per second)",
        null=True,
        blank=True,
        validators=[MinValueValidator(0.1), MaxValueValidator(1000)],
        help_text="Blank: by the number's type (long code 1, toll-free 3, short code 100). Set it to what "
        "the carrier registration allows, e.g. a Messaging Service's throughput.",
    )

    class Meta:
        ordering = ["e164"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(e164__regex=r"^\+[1-9][0-9]{1,14}$"), name="phone_e164"
            ),
            models.CheckConstraint(
                condition=models.Q(sms_enabled=True) | models.Q(voice_enabled=True),
                name="phone_sms_or_voice",
            ),
        ]

    def __str__(self) -> str:
        return self.e164

    @property
    def is_toll_free(self) -> bool:
        return self.number_type == NumberType.TOLL_FREE


class Weekday(models.IntegerChoices):
    MONDAY = 0, "Monday"
    TUESDAY = 1, "Tuesday"
    WEDNESDAY = 2, "Wednesday"
    THURSDAY = 3, "Thursday"
    FRIDAY = 4, "Friday"
    SATURDAY = 5, "Saturday"
    SUNDAY = 6, "Sunday"


class OfficeHours(models.Model):
    """One open interval on a weekday, in the office's time zone. Several rows make split shifts."""

    office = models.ForeignKey(Office, on_delete=models.CASCADE, related_name="hours")
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    opens_at = models.TimeField()
    closes_at = models.TimeField()

    class Meta:
        ordering = ["weekday", "opens_at"]
        verbose_name_plural = "office hours"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(opens_at__lt=models.F("closes_at")), name="hours_open_before_close"
            ),
            models.CheckConstraint(
                condition=models.Q(weekday__gte=0, weekday__lte=6), name="hours_weekday_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.opens_at:%H:%M}-{self.closes_at:%H:%M}"


class OfficeHoliday(models.Model):
    office = models.ForeignKey(Office, on_delete=models.CASCADE, related_name="holidays")
    date = models.DateField()
    name = models.CharField(max_length=100)

    class Meta:
        ordering = ["date"]
        constraints = [models.UniqueConstraint(fields=["office", "date"], name="holiday_one_per_office_date")]

    def __str__(self) -> str:
        return f"{self.date}: {self.name}"
