"""``manage.py seed_demo [--reset]``: the demo office, once. The demo runner calls it on every start.

Its standard output is shown in the runner's banner, so it prints a short summary and the logins only.
"""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from demo.seed import DEMO_OFFICE_SLUG, DEMO_PASSWORD, DEMO_USERS, DemoSeedError, demo_seed


class Command(BaseCommand):
    # The demo runner calls this right after `migrate`, which ran the system checks: skip their ~0.5 s.
    requires_system_checks: list[str] = []
    help = "Create the demo office (slug 'demo'), its users and data, unless it exists. Needs DEMO_MODE."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Delete the demo office and the demo users first, then reseed.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = demo_seed(reset=options["reset"])
        except DemoSeedError as exc:
            raise CommandError(f"seed_demo: {exc}") from exc
        if result.created:
            counts = ", ".join(f"{value:,} {name}" for name, value in result.counts.items())
            self.stdout.write(f"Demo office '{DEMO_OFFICE_SLUG}' seeded in {result.seconds:.1f} s: {counts}.")
        elif result.counts:
            counts = ", ".join(f"{value:,} {name}" for name, value in result.counts.items())
            self.stdout.write(f"Demo office '{DEMO_OFFICE_SLUG}' already exists; added {counts}.")
        else:
            self.stdout.write(f"Demo office '{DEMO_OFFICE_SLUG}' already exists; nothing to do.")
        width = max(len(user.username) for user in DEMO_USERS)
        self.stdout.write("")
        self.stdout.write(
            f"Demo logins (password for all: {DEMO_PASSWORD}; demo only, never use it for real):"
        )
        for user in DEMO_USERS:
            self.stdout.write(f"  {user.username:<{width}}  /  {DEMO_PASSWORD}  /  {user.role_label}")
