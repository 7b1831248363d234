from __future__ import annotations

import pytest

from messages.keywords import Keyword, classify_keyword, keyword_from_opt_out_type


@pytest.mark.parametrize(
    "body", ["STOP", "stop", "Stop", "STOPALL", "unsubscribe", "CANCEL", "end", "QUIT", "revoke", "OptOut"]
)
def test_opt_out_keywords_match_case_insensitively(body):
    assert classify_keyword(body, is_toll_free=False) is Keyword.OPT_OUT
    assert classify_keyword(body, is_toll_free=True) is Keyword.OPT_OUT


@pytest.mark.parametrize("body", ["  STOP  ", "\nstop\t", "Stop.", "STOP!", "stop!!", " Stop. "])
def test_surrounding_whitespace_and_trailing_period_or_bang_are_ignored(body):
    assert classify_keyword(body, is_toll_free=False) is Keyword.OPT_OUT


@pytest.mark.parametrize(
    "body", ["Please stop texting me", "STOP IT", "stop?", "OPT OUT", "STOPP", ".STOP", "", "   ", "s t o p"]
)
def test_keyword_must_be_the_whole_message(body):
    assert classify_keyword(body, is_toll_free=False) is None


@pytest.mark.parametrize("body", ["START", "unstop", "Yes"])
def test_opt_in_keywords_on_a_long_code(body):
    assert classify_keyword(body, is_toll_free=False) is Keyword.OPT_IN


def test_yes_is_not_an_opt_in_on_toll_free_numbers():
    assert classify_keyword("YES", is_toll_free=True) is None
    assert classify_keyword("START", is_toll_free=True) is Keyword.OPT_IN
    assert classify_keyword("UNSTOP", is_toll_free=True) is Keyword.OPT_IN


@pytest.mark.parametrize("body", ["HELP", "help", "Info", "INFO."])
def test_help_keywords(body):
    assert classify_keyword(body, is_toll_free=False) is Keyword.HELP


def test_non_ascii_lookalikes_are_not_keywords():
    assert "\u017ftop".upper() == "STOP"  # the trap: LATIN SMALL LETTER LONG S
    assert classify_keyword("\u017ftop", is_toll_free=False) is None
    assert classify_keyword("\uff33\uff34\uff2f\uff30", is_toll_free=False) is None  # full-width


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("STOP", Keyword.OPT_OUT),
        ("start", Keyword.OPT_IN),
        ("HELP", Keyword.HELP),
        ("", None),
        (None, None),
        ("UNKNOWN", None),
    ],
)
def test_keyword_from_twilio_opt_out_type(value, expected):
    assert keyword_from_opt_out_type(value) is expected
