"""TwiML documents are rendered once per distinct step (the steps come from the cached voice config)."""

from __future__ import annotations

from voice import twiml as voice_twiml
from voice.services.steps import HangupStep, MenuStep, Utterance


def _menu(attempt: int) -> MenuStep:
    return MenuStep(
        node="menu-1",
        step=1,
        attempt=attempt,
        say=(Utterance(text="Press 1 to leave a message."),),
        speech=False,
        hints=(),
        timeout=5,
        language="en-US",
    )


def test_equal_steps_share_one_rendering_and_different_steps_do_not() -> None:
    voice_twiml._render_cached.cache_clear()
    first = voice_twiml.render(_menu(1))
    again = voice_twiml.render(_menu(1))  # an equal step built afresh, as for the next caller
    other = voice_twiml.render(_menu(2))
    info = voice_twiml._render_cached.cache_info()
    assert (info.hits, info.misses) == (1, 2)
    assert first == again == str(voice_twiml._response(_menu(1)))
    assert other != first
    assert "attempt=2" in other


def test_rendering_is_the_same_document_as_without_the_cache() -> None:
    step = HangupStep(say=(Utterance(text="Goodbye & <thanks>"),))
    assert voice_twiml.render(step) == str(voice_twiml._response(step))
    assert "&amp; &lt;thanks&gt;" in voice_twiml.render(step)
