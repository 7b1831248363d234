"""IVR configuration: the spoken menus an office's voice numbers answer with (the voice hotline).

These are data only; ``offices.models`` re-exports them, so Django registers them with the ``offices`` app.
The call flow that reads them is ``voice.services``, and TwiML is built in
``voice.twiml``: ``offices`` sits below ``messages`` and never imports it, which is why a
voicemail option names its tag and queue (``topic``, ``queue_name``) instead of holding foreign keys to
``messages`` models. The admin (registered in ``voice/admin.py``) checks those names exist.

An office has any number of menus, one of them the main menu every call starts with. A menu holds its own
voice and language, so a "Para español, oprima nueve" option simply switches to a Spanish menu.
"""

from __future__ import annotations

import uuid
from pathlib import PurePath

from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import (
    FileExtensionValidator,
    MaxValueValidator,
    MinValueValidator,
    RegexValidator,
)
from django.db import models
from django.db.models.functions import Lower

from offices.models.office import E164_VALIDATOR, Office

# Voices <Say> accepts: the legacy man/woman/alice, Amazon Polly and Google voices
# (https://www.twilio.com/docs/voice/twiml/say/text-speech#available-voices-and-languages).
VOICE_VALIDATOR = RegexValidator(
    r"^(man|woman|alice|Polly\.[A-Z][A-Za-z]+(-Neural|-Generative)?|Google\.[a-z]{2,3}-[A-Z]{2}-[A-Za-z0-9-]+)$",
    "Use a Twilio voice such as Polly.Joanna, Polly.Lupe-Neural, Google.en-US-Standard-C or alice.",
)
LANGUAGE_VALIDATOR = RegexValidator(
    r"^[a-z]{2,3}-[A-Z]{2}$", "Use a BCP-47 language tag with a region, e.g. en-US or es-US."
)
AUDIO_EXTENSIONS = ["mp3", "wav"]
# Twilio's <Play> accepts these; anything larger makes callers wait while Twilio downloads it.
MAX_GREETING_AUDIO_BYTES = 5 * 1024 * 1024
MAX_DIAL_NUMBERS = 10


def validate_greeting_audio_size(file: object) -> None:
    size = getattr(file, "size", None)
    if size is not None and size > MAX_GREETING_AUDIO_BYTES:
        raise ValidationError(
            f"Greeting audio must be at most {MAX_GREETING_AUDIO_BYTES // (1024 * 1024)} MB."
        )


def ivr_audio_upload_to(instance: IvrMenu, filename: str) -> str:
    # A fresh name per upload: Twilio caches <Play> audio by URL, so a replaced file needs a new URL.
    suffix = PurePath(filename).suffix.lower()[:5]
    return f"offices/{instance.office_id}/ivr/{uuid.uuid4().hex}{suffix}"


class IvrAction(models.TextChoices):
    VOICEMAIL = "voicemail", "Leave a voicemail (about a topic)"
    STAFF = "staff", "Talk to staff (office hours only; no answer goes to voicemail)"
    INFO = "info", "Hear office information (hours, address)"
    LANGUAGE = "language", "Switch to another menu (e.g. Spanish)"
    REPEAT = "repeat", "Repeat the menu"


class IvrDigit(models.TextChoices):
    # "#" is not offered: it ends keypad input in <Gather> and <Record> (finishOnKey).
    ONE = "1", "1"
    TWO = "2", "2"
    THREE = "3", "3"
    FOUR = "4", "4"
    FIVE = "5", "5"
    SIX = "6", "6"
    SEVEN = "7", "7"
    EIGHT = "8", "8"
    NINE = "9", "9"
    ZERO = "0", "0"
    STAR = "*", "*"


class IvrMenu(models.Model):
    """One spoken menu: a greeting, then options by digit (and by speech)."""

    office = models.ForeignKey(Office, on_delete=models.CASCADE, related_name="ivr_menus")
    name = models.CharField(max_length=80, help_text="For staff, e.g. “Main (English)” or “Español”.")
    is_main = models.BooleanField(
        "main menu", default=False, help_text="The menu every call starts with. One per office."
    )
    language = models.CharField(max_length=16, default="en-US", validators=[LANGUAGE_VALIDATOR])
    voice = models.CharField(max_length=64, default="Polly.Joanna", validators=[VOICE_VALIDATOR])
    greeting_text = models.TextField(
        max_length=1000,
        blank=True,
        help_text="Spoken before the options, e.g. “Thank you for calling the office of Representative Doe.”",
    )
    greeting_audio = models.FileField(
        upload_to=ivr_audio_upload_to,
        blank=True,
        max_length=200,
        validators=[FileExtensionValidator(AUDIO_EXTENSIONS), validate_greeting_audio_size],
        help_text="Optional MP3 or WAV played instead of the greeting text.",
    )
    after_hours_text = models.TextField(
        max_length=1000,
        blank=True,
        help_text="Main menu only: spoken outside office hours and on holidays, before the voicemail beep.",
    )
    after_hours_audio = models.FileField(
        upload_to=ivr_audio_upload_to,
        blank=True,
        max_length=200,
        validators=[FileExtensionValidator(AUDIO_EXTENSIONS), validate_greeting_audio_size],
        help_text="Optional MP3 or WAV played instead of the after-hours text.",
    )
    info_text = models.TextField(
        max_length=1000,
        blank=True,
        help_text="Spoken for the “office information” option: opening hours, street address, website.",
    )
    voicemail_prompt = models.CharField(
        max_length=300,
        default="Please leave your message after the beep. Press the pound key when you are finished.",
    )
    staff_unavailable_text = models.CharField(
        max_length=300, default="No one is available to take your call right now."
    )
    invalid_input_text = models.CharField(max_length=200, default="Sorry, I did not understand that.")
    goodbye_text = models.CharField(max_length=200, default="Thank you for calling. Goodbye.")
    speech_enabled = models.BooleanField(
        default=True, help_text="Let callers say an option (its speech keywords) as well as press its digit."
    )
    gather_timeout_seconds = models.PositiveSmallIntegerField(
        default=6,
        validators=[MinValueValidator(2), MaxValueValidator(20)],
        help_text="Seconds of silence after the options before the menu counts as “no input”.",
    )
    max_attempts = models.PositiveSmallIntegerField(
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(5)],
        help_text="Menu plays before a caller who gives no valid choice is sent to voicemail.",
    )
    dial_numbers = ArrayField(
        models.CharField(max_length=16, validators=[E164_VALIDATOR]),
        size=MAX_DIAL_NUMBERS,
        default=list,
        blank=True,
        help_text="Staff numbers “talk to staff” rings at once (E.164, comma-separated). The first to answer "
        "takes the call.",
    )
    dial_timeout_seconds = models.PositiveSmallIntegerField(
        default=20,
        validators=[MinValueValidator(5), MaxValueValidator(60)],
        help_text="Seconds staff phones ring before the caller goes to voicemail.",
    )
    max_recording_seconds = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(10), MaxValueValidator(3600)],
        help_text="Longest voicemail. Blank: the VOICE_MAX_RECORDING_SECONDS setting (3 minutes by default).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["office", "-is_main", "name"]
        verbose_name = "IVR menu"
        constraints = [
            models.UniqueConstraint(
                fields=["office"], condition=models.Q(is_main=True), name="ivr_one_main_menu_per_office"
            ),
            models.UniqueConstraint("office", Lower("name"), name="ivr_menu_name_unique_per_office_ci"),
            models.CheckConstraint(
                condition=models.Q(gather_timeout_seconds__gte=2, gather_timeout_seconds__lte=20),
                name="ivr_gather_timeout_range",
            ),
            models.CheckConstraint(
                condition=models.Q(max_attempts__gte=1, max_attempts__lte=5), name="ivr_max_attempts_range"
            ),
            models.CheckConstraint(
                condition=models.Q(dial_timeout_seconds__gte=5, dial_timeout_seconds__lte=60),
                name="ivr_dial_timeout_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.language})"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if not self.greeting_text.strip() and not self.greeting_audio:
            errors["greeting_text"] = "Give a greeting text, or upload greeting audio."
        if self.office_id is not None and self.dial_numbers:
            own = set(
                self.office.phone_numbers.filter(e164__in=self.dial_numbers).values_list("e164", flat=True)
            )
            if own:
                # Dialling our own Twilio number would loop the call straight back into this IVR.
                errors["dial_numbers"] = f"{', '.join(sorted(own))} is this office's own hotline number."
        if len(set(self.dial_numbers)) != len(self.dial_numbers):
            errors["dial_numbers"] = "A staff number is listed twice."
        if errors:
            raise ValidationError(errors)


class IvrOption(models.Model):
    """One choice in a menu: a digit (and optional spoken keywords) and what it does."""

    menu = models.ForeignKey(IvrMenu, on_delete=models.CASCADE, related_name="options")
    digit = models.CharField(max_length=1, choices=IvrDigit.choices)
    action = models.CharField(max_length=10, choices=IvrAction.choices)
    prompt = models.CharField(
        max_length=300, help_text="Spoken in the menu, e.g. “For health care, press 1.”"
    )
    speech_keywords = models.CharField(
        max_length=200,
        blank=True,
        help_text="Comma-separated words a caller may say instead of pressing the digit, "
        "e.g. “health, medicare”.",
    )
    topic = models.CharField(
        max_length=80,
        blank=True,
        help_text="Voicemail only: the name of the issue tag set on the caller's conversation.",
    )
    queue_name = models.CharField(
        max_length=80,
        blank=True,
        help_text="Voicemail only: the name of the triage queue the conversation joins.",
    )
    target_menu = models.ForeignKey(
        IvrMenu,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="“Switch to another menu” only: the menu to switch to.",
    )

    class Meta:
        ordering = ["menu", "digit"]
        verbose_name = "IVR option"
        constraints = [
            models.UniqueConstraint(fields=["menu", "digit"], name="ivr_option_digit_once_per_menu"),
            models.CheckConstraint(
                condition=models.Q(action__in=IvrAction.values), name="ivr_option_action_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(digit__in=IvrDigit.values), name="ivr_option_digit_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(action=IvrAction.LANGUAGE, target_menu__isnull=False)
                | (~models.Q(action=IvrAction.LANGUAGE) & models.Q(target_menu__isnull=True)),
                name="ivr_option_target_iff_language",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.digit}: {self.get_action_display()}"

    @property
    def keywords(self) -> list[str]:
        return [word.strip().lower() for word in self.speech_keywords.split(",") if word.strip()]

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.action == IvrAction.LANGUAGE:
            if self.target_menu is None:
                errors["target_menu"] = "Choose the menu this option switches to."
            elif self.menu_id is not None and (
                self.target_menu.office_id != self.menu.office_id or self.target_menu_id == self.menu_id
            ):
                errors["target_menu"] = "Choose another menu of the same office."
        elif self.target_menu_id is not None:
            errors["target_menu"] = "Only “switch to another menu” options have a target menu."
        if self.action != IvrAction.VOICEMAIL and (self.topic or self.queue_name):
            errors["topic"] = "Only voicemail options set a topic or queue."
        if self.action == IvrAction.STAFF and self.menu_id is not None and not self.menu.dial_numbers:
            errors["action"] = "Add staff numbers to the menu before offering “talk to staff”."
        if errors:
            raise ValidationError(errors)
