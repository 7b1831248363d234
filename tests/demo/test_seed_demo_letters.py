"""The demo's form letters: approved, tagged, and created once."""

from __future__ import annotations

from typing import Any

import pytest

from correspondence.models import FormLetter
from demo.seed import DEMO_OFFICE_SLUG, demo_seed
from demo.seed_letters import LETTERS, demo_letters_ensure
from offices.models import Office

pytestmark = pytest.mark.django_db


def test_the_demo_has_its_letters_approved_once(settings: Any) -> None:
    settings.DEMO_MODE = True
    demo_seed()
    office = Office.objects.get(slug=DEMO_OFFICE_SLUG)
    letters = FormLetter.objects.filter(office=office).prefetch_related("tags")
    assert {letter.name for letter in letters} == {name for name, _, _ in LETTERS}
    assert all(letter.status == "approved" and letter.tags.exists() for letter in letters)
    assert demo_letters_ensure(office=office) == {}
