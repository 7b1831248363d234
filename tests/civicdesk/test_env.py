"""civicdesk.env: settings from the environment, with a clear error for a bad value."""

from __future__ import annotations

import pytest

from civicdesk.env import ImproperlyConfiguredEnv, env_float


def test_env_float_reads_a_number_and_falls_back_to_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CIVICDESK_TEST_FLOAT", raising=False)
    assert env_float("CIVICDESK_TEST_FLOAT", 0.5) == 0.5
    monkeypatch.setenv("CIVICDESK_TEST_FLOAT", "  ")
    assert env_float("CIVICDESK_TEST_FLOAT", 0.5) == 0.5
    monkeypatch.setenv("CIVICDESK_TEST_FLOAT", "0.25")
    assert env_float("CIVICDESK_TEST_FLOAT", 0.5) == 0.25
    monkeypatch.setenv("CIVICDESK_TEST_FLOAT", "2")
    assert env_float("CIVICDESK_TEST_FLOAT", 0.5) == 2.0


@pytest.mark.parametrize("raw", ["half", "nan", "inf", "-inf", "1,5"])
def test_env_float_refuses_what_is_not_a_finite_number(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("CIVICDESK_TEST_FLOAT", raw)
    with pytest.raises(ImproperlyConfiguredEnv, match="CIVICDESK_TEST_FLOAT"):
        env_float("CIVICDESK_TEST_FLOAT", 0.5)
