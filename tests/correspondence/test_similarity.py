"""The near-identity measure behind campaign detection: what it sees through, and what it keeps apart."""

from __future__ import annotations

from correspondence import similarity as s

SCRIPT = (
    "Please vote NO on HB 1234. This bill would cut Medicaid funding for 200,000 families in our state and "
    "close rural hospitals. Protect our health care and stand with working families."
)
WITH_OPENER_AND_OWN_WORDS = (
    "Hi, " + SCRIPT + " My mom depends on Medicaid for her insulin. - Maria from 94110"
)
WITH_TYPOS = SCRIPT.lower().replace("families", "famlies").replace("1234", "99") + " Thanks"
TRANSCRIPT = (
    "hi my name is john i live in springfield um im calling about h b twelve thirty four please vote no on "
    "this bill it would cut medic aid funding for two hundred thousand families in our state and close rural "
    "hospitals protect our health care and stand with working families thank you"
)
SAME_TOPIC_OWN_WORDS = (
    "I think Medicaid is important and HB 1234 is a bad bill. My clinic in town closed last year and I had "
    "to drive an hour."
)
OTHER_SCRIPT = (
    "Congress must protect the Postal Service. Six-day delivery keeps medicine and ballots moving in rural "
    "towns like ours. Oppose any plan to close processing plants."
)


def test_the_normal_form_drops_accents_case_punctuation_and_digit_values() -> None:
    assert (
        s.normal_form("Café, HB-1234!  Vote NO") == s.normal_form("cafe hb 99 vote no") == "cafe hb 0 vote no"
    )


def test_copies_of_a_script_contain_it_whatever_was_added_or_mistyped() -> None:
    script = s.shingles(SCRIPT)
    assert s.containment(script, s.shingles(WITH_OPENER_AND_OWN_WORDS)) == 1.0
    assert s.containment(script, s.shingles(WITH_TYPOS)) >= 0.9
    assert s.containment(script, s.shingles(TRANSCRIPT)) >= s.DEFAULT_THRESHOLD
    assert s.containment(script, s.shingles(SAME_TOPIC_OWN_WORDS)) < 0.2
    assert s.containment(script, s.shingles(OTHER_SCRIPT)) < 0.1


def test_group_puts_the_copies_together_and_leaves_the_rest_out() -> None:
    texts = [SCRIPT, WITH_OPENER_AND_OWN_WORDS, SAME_TOPIC_OWN_WORDS, WITH_TYPOS, TRANSCRIPT, OTHER_SCRIPT]
    assert s.group(texts) == [0, 0, None, 0, 0, None]
    # A group smaller than the minimum size is no group.
    assert s.group(texts, min_size=5) == [None] * len(texts)


def test_group_never_groups_short_texts() -> None:
    assert s.group(["Thanks!", "Thanks!", "thanks", "THANKS!!"]) == [None] * 4


def test_copies_share_sketch_values_and_unrelated_texts_almost_none() -> None:
    script = set(s.Fingerprint.of(SCRIPT).sketch)
    assert len(script & set(s.Fingerprint.of(WITH_TYPOS).sketch)) >= s.SKETCH_SIZE // 2
    assert len(script & set(s.Fingerprint.of(OTHER_SCRIPT).sketch)) <= 2


def test_the_personal_part_is_what_the_sender_added() -> None:
    script = s.shingles(SCRIPT)
    personal = s.personal_part(WITH_OPENER_AND_OWN_WORDS, script)
    assert personal == "My mom depends on Medicaid for her insulin. - Maria from 94110"
    assert s.personal_part(SCRIPT, script) == ""
    assert s.needs_reading("My son is deployed and his benefits were cut off")
    assert not s.needs_reading("Thanks")
