"""``manage.py simulate_sms --to +14155550100 --from +14155550123 --body "..."``: text in as a constituent.

Posts a signed inbound-SMS webhook to a running server over HTTP (see demo.sms), so no Twilio
account is needed. The server must validate against the same base URL and auth token.
"""

from __future__ import annotations

from argparse import ArgumentParser
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from demo.sms import SimulatorError, fictional_number, parse_e164, simulate_inbound_sms
from offices.selectors import office_phone_number_for


class Command(BaseCommand):
    # It only posts over HTTP to a server that ran the system checks itself: skip their ~0.5 s.
    requires_system_checks: list[str] = []
    help = "Send a simulated, signed inbound text to a running civicdesk server, as Twilio would."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--to", required=True, help="The office's number, E.164 (e.g. +14155550100).")
        parser.add_argument(
            "--from",
            dest="from_",
            default="",
            help="The constituent's number, E.164. Default: a random fictional one.",
        )
        parser.add_argument("--body", default="", help="The text of the message.")
        parser.add_argument(
            "--media-url", action="append", default=[], dest="media_urls", help="A media URL (repeatable)."
        )
        parser.add_argument("--base-url", default="", help="The server's base URL. Default: PUBLIC_BASE_URL.")
        parser.add_argument("--auth-token", default="", help="Default: TWILIO_AUTH_TOKEN.")
        parser.add_argument("--account-sid", default="", help="Default: TWILIO_ACCOUNT_SID.")

    def handle(self, *args: Any, **options: Any) -> None:
        base_url = options["base_url"] or settings.PUBLIC_BASE_URL
        if not base_url:
            raise CommandError(
                "No server to post to: pass --base-url (e.g. http://127.0.0.1:8000) or set PUBLIC_BASE_URL."
            )
        try:
            result = simulate_inbound_sms(
                base_url=base_url,
                to=options["to"],
                from_=options["from_"] or fictional_number(),
                body=options["body"],
                auth_token=options["auth_token"] or settings.TWILIO_AUTH_TOKEN,
                account_sid=options["account_sid"] or settings.TWILIO_ACCOUNT_SID,
                media_urls=options["media_urls"],
            )
        except SimulatorError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"POST {result.url} -> HTTP {result.status_code}, message SID {result.message_sid}")
        if result.body.strip():
            self.stdout.write(result.body.strip())
        if result.status_code == HTTPStatus.FORBIDDEN:
            raise CommandError(
                "The server rejected the signature. It validates against its own PUBLIC_BASE_URL and "
                "TWILIO_AUTH_TOKEN: pass the same --base-url and --auth-token."
            )
        if not result.ok:
            raise CommandError(f"The server answered HTTP {result.status_code}.")
        self.stdout.write(self.style.SUCCESS("Accepted by the webhook."))
        self._warn_if_not_an_office_number(options["to"])

    def _warn_if_not_an_office_number(self, to: str) -> None:
        # Twilio-style, the webhook acknowledges a text to a number it does not know and drops it; say so.
        # Only a hint: the server may use another database than this command.
        try:
            known = office_phone_number_for(e164=parse_e164(to)) is not None
        except (DatabaseError, SimulatorError):
            return
        if not known:
            self.stderr.write(
                f"Warning: {to} is not an office's number in this database; the text was dropped."
            )
