"""The people an office hears from. A constituent belongs to exactly one office."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from offices.models import E164_VALIDATOR, Office


class SmsConsent(models.TextChoices):
    # Texting in is implied consent to be answered (CTIA: conversational messaging); STOP withdraws it.
    IMPLIED = "implied", "Implied (texted in)"
    OPTED_IN = "opted_in", "Opted in"
    OPTED_OUT = "opted_out", "Opted out"
    # Consent to texts comes only from a text: someone known only from a call has given none. Their first
    # text makes it implied (logged). Staff may still answer a caller by text, one conversation at a time,
    # as before (a reply is refused only to someone who opted out); the record just never claims a consent
    # the constituent did not give.
    NONE = "none", "Not given"


class Constituent(models.Model):
    office = models.ForeignKey(Office, on_delete=models.CASCADE, related_name="constituents")
    # E.164; empty for callers with withheld caller ID or constituents known only by e-mail.
    phone = models.CharField(max_length=16, blank=True, validators=[E164_VALIDATOR])
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    email = models.EmailField(blank=True)
    address_line1 = models.CharField(max_length=200, blank=True)
    address_line2 = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100, blank=True)
    state = models.CharField(max_length=2, blank=True)
    zip_code = models.CharField("ZIP", max_length=10, blank=True)
    # None: not yet known. Set by staff or a district check.
    in_district = models.BooleanField(null=True, blank=True)
    preferred_language = models.CharField(max_length=16, default="en")
    sms_consent = models.CharField(max_length=16, choices=SmsConsent.choices, default=SmsConsent.IMPLIED)
    # Where the carrier says the number is registered (Twilio's FromCity/FromState/FromZip): hints, not facts.
    carrier_city = models.CharField(max_length=100, blank=True)
    carrier_state = models.CharField(max_length=2, blank=True)
    carrier_zip = models.CharField(max_length=10, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["last_name", "first_name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["office", "phone"],
                condition=~models.Q(phone=""),
                name="constituent_phone_unique_per_office",
            ),
            models.CheckConstraint(
                condition=models.Q(phone="") | models.Q(phone__regex=r"^\+[1-9][0-9]{1,14}$"),
                name="constituent_phone_e164",
            ),
            models.CheckConstraint(
                condition=models.Q(sms_consent__in=SmsConsent.values), name="constituent_sms_consent_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["office", "last_name", "first_name"], name="constituent_office_name"),
            models.Index(fields=["office", "zip_code"], name="constituent_office_zip"),
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def display_name(self) -> str:
        return self.full_name or self.phone or self.email or f"Constituent {self.pk}"

    @property
    def postal_address(self) -> str:
        """The address on one line, only the parts filled in: "1 Main St, Springfield IL 62701"."""
        locality = " ".join(part for part in (self.city, self.state, self.zip_code) if part)
        return ", ".join(part for part in (self.address_line1, self.address_line2, locality) if part)

    @property
    def is_opted_out(self) -> bool:
        return self.sms_consent == SmsConsent.OPTED_OUT


class ConsentSource(models.TextChoices):
    KEYWORD = "keyword", "Keyword texted by the constituent"
    TWILIO_ADVANCED_OPT_OUT = "twilio_opt_out", "Twilio Advanced Opt-Out"
    CARRIER_21610 = "carrier_21610", "Carrier reported opt-out (Twilio 21610)"
    STAFF = "staff", "Changed by staff"
    IMPORT = "import", "Imported"
    TEXTED_IN = "texted_in", "First text from the constituent"
    CORRECTED = "corrected", "Corrected: never texted in"


class ConsentEvent(models.Model):
    """An append-only log of every change to a constituent's SMS consent, with its cause."""

    office = models.ForeignKey(Office, on_delete=models.CASCADE, related_name="+")
    constituent = models.ForeignKey(Constituent, on_delete=models.CASCADE, related_name="consent_events")
    previous = models.CharField(max_length=16, choices=SmsConsent.choices)
    new = models.CharField(max_length=16, choices=SmsConsent.choices)
    source = models.CharField(max_length=24, choices=ConsentSource.choices)
    keyword = models.CharField(max_length=32, blank=True)
    # The provider SID of the message that caused the change. A SID rather than a foreign key because
    # messages is a higher app (dependencies run offices <- constituents <- messages).
    message_sid = models.CharField(max_length=34, blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["constituent", "-created_at"], name="consent_by_constituent")]

    def __str__(self) -> str:
        return f"{self.constituent_id}: {self.previous} → {self.new} ({self.source})"
