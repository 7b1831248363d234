"""The IVR's decisions: given the office's configuration and what the caller did, what they hear next.

Nothing here writes. Each function returns a :class:`Decision`: the next :mod:`step <.steps>`, the entry to
record in the call's menu path, and (on a call-in day) the position to tally. The caller of these functions
(``voice.services.calls``) persists the path and the tally in its own transaction.

Menu nodes travel in our own callback URLs (``node=menu-12``), which Twilio signs with the request, so a
decision never depends on state another webhook might not have written yet.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from common.ids import MAX_ID_DIGITS
from offices.models import IvrAction, IvrMenu, IvrOption, Office
from voice.models import CallInCampaign, CallInPosition
from voice.services.config import VoiceConfig, voice_config_load
from voice.services.steps import (
    DEFAULT_LANGUAGE,
    DEFAULT_VOICE,
    AnnounceStep,
    AudioRef,
    DialStep,
    HangupStep,
    MenuStep,
    RecordStep,
    Step,
    Utterance,
)

MENU_NODE = "menu"
CALLIN_NODE = "callin"
DEFAULT_GATHER_TIMEOUT = 6
MAX_PATH_INPUT = 80

DEFAULT_VOICEMAIL_PROMPT = (
    "Please leave your message after the beep. Press the pound key when you are finished."
)
DEFAULT_GOODBYE = "Thank you for calling. Goodbye."
NOT_IN_SERVICE = "We are sorry. This number is not accepting calls. Goodbye."
WHISPER = "Constituent hotline call. Connecting you now."

# Spoken digits, so "press or say one" works in the languages offices use most. Twilio returns speech as
# text such as "One." or "uno", with punctuation (https://www.twilio.com/docs/voice/twiml/gather#speechresult).
_DIGIT_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "cero": "0", "uno": "1", "dos": "2", "tres": "3", "cuatro": "4", "cinco": "5",
    "seis": "6", "siete": "7", "ocho": "8", "nueve": "9", "star": "*", "asterisk": "*",
}  # fmt: skip
_CALLIN_WORDS: dict[str, tuple[str, ...]] = {
    "1": ("support", "for it", "yes", "apoyo", "a favor"),
    "2": ("oppose", "against", "no", "en contra", "me opongo"),
    "3": ("message", "voicemail", "mensaje"),
}
_WORD_RE = re.compile(r"[\w*]+", re.UNICODE)


@dataclass(frozen=True, slots=True)
class Decision:
    step: Step
    # The menu-path entry for this point of the call (JSON-ready); see calls.path_record().
    entry: dict[str, Any] = field(default_factory=dict)
    tally: CallInPosition | None = None
    campaign: CallInCampaign | None = None


# --- nodes and input -------------------------------------------------------------------------------


def menu_node(menu: IvrMenu) -> str:
    return f"{MENU_NODE}-{menu.pk}"


def parse_node(node: str) -> tuple[str, int | None]:
    """("menu", 12) for "menu-12"; ("menu", None) for anything unreadable (the main menu).

    A dash, not a colon: URL-safe characters survive every client and proxy unchanged, and the signature
    covers the URL exactly as sent (a client that rewrote "%3A" to ":" would break it).
    """
    kind, _, pk = node.partition("-")
    if kind in (MENU_NODE, CALLIN_NODE) and pk.isdigit() and len(pk) <= MAX_ID_DIGITS:
        return kind, int(pk)
    return MENU_NODE, None


def _words(text: str) -> list[str]:
    return _WORD_RE.findall(text.lower())


def _contains(text: str, phrase: str) -> bool:
    words, wanted = _words(text), _words(phrase)
    return bool(wanted) and any(words[i : i + len(wanted)] == wanted for i in range(len(words)))


def spoken_digit(speech: str) -> str | None:
    """The digit a caller said ("one", "uno", "1."), if their whole answer is one digit word."""
    words = _words(speech)
    if len(words) != 1:
        return None
    word = words[0]
    return word if word in _DIGIT_WORDS.values() else _DIGIT_WORDS.get(word)


def pressed_digit(digits: str | None) -> str | None:
    """The key pressed, if exactly one key (ignoring a trailing #); "12", "abc" and "" are no choice."""
    if digits is None:
        return None
    key = digits.strip().removesuffix("#")
    return key if len(key) == 1 and (key.isdigit() or key == "*") else None


def option_for(options: Iterable[IvrOption], *, digits: str | None, speech: str | None) -> IvrOption | None:
    """The option the caller chose by key, or by saying its digit or one of its keywords."""
    options = list(options)
    key = pressed_digit(digits)
    if key is None and speech:
        key = spoken_digit(speech)
        if key is None:
            for option in options:
                if any(_contains(speech, keyword) for keyword in option.keywords):
                    return option
    if key is None:
        return None
    return next((option for option in options if option.digit == key), None)


def _via(digits: str | None, speech: str | None) -> tuple[str, str]:
    if digits:
        return "dtmf", digits[:MAX_PATH_INPUT]
    if speech:
        return "speech", speech[:MAX_PATH_INPUT]
    return "none", ""


# --- utterances --------------------------------------------------------------------------------------


def _voice(menu: IvrMenu | None) -> tuple[str, str]:
    return (menu.voice, menu.language) if menu is not None else (DEFAULT_VOICE, DEFAULT_LANGUAGE)


def _say(menu: IvrMenu | None, text: str) -> Utterance:
    voice, language = _voice(menu)
    return Utterance(text=text, voice=voice, language=language)


def _recording_or_text(menu: IvrMenu, audio_field: str, text: str) -> tuple[Utterance, ...]:
    audio = getattr(menu, audio_field)
    if audio:
        voice, language = _voice(menu)
        return (
            Utterance(
                audio=AudioRef(menu.office_id, menu.pk, audio_field, audio.name),
                voice=voice,
                language=language,
            ),
        )
    return (_say(menu, text),) if text.strip() else ()


def _default_greeting(office: Office) -> str:
    return f"You have reached the office of {office.official_display}."


def _greeting(office: Office, menu: IvrMenu | None) -> tuple[Utterance, ...]:
    if menu is None:
        return (_say(None, _default_greeting(office)),)
    return _recording_or_text(menu, "greeting_audio", menu.greeting_text)


def _prompts(menu: IvrMenu) -> tuple[Utterance, ...]:
    return tuple(_say(menu, option.prompt) for option in menu.options.all() if option.prompt.strip())


def _hints(menu: IvrMenu) -> tuple[str, ...]:
    return tuple(dict.fromkeys(word for option in menu.options.all() for word in option.keywords))


# --- steps ---------------------------------------------------------------------------------------------


def _menu_step(menu: IvrMenu, *, step: int, attempt: int, lead: Sequence[Utterance]) -> MenuStep:
    return MenuStep(
        node=menu_node(menu),
        step=step,
        attempt=attempt,
        say=(*lead, *_prompts(menu)),
        speech=menu.speech_enabled,
        hints=_hints(menu) if menu.speech_enabled else (),
        timeout=menu.gather_timeout_seconds,
        language=menu.language,
    )


def twilio_transcribes(language: str) -> bool:
    """Whether to ask for Twilio's built-in transcription: it only handles English
    (https://www.twilio.com/docs/voice/twiml/record#transcribe)."""
    return bool(settings.VOICE_TWILIO_TRANSCRIPTION) and language.lower().startswith("en")


def record_step(
    *, office: Office, menu: IvrMenu | None, step: int, lead: Sequence[Utterance] = (), topic: str = ""
) -> RecordStep:
    _, language = _voice(menu)
    prompt = menu.voicemail_prompt if menu is not None else DEFAULT_VOICEMAIL_PROMPT
    goodbye = menu.goodbye_text if menu is not None else DEFAULT_GOODBYE
    max_seconds = (
        menu.max_recording_seconds if menu is not None else None
    ) or settings.VOICE_MAX_RECORDING_SECONDS
    return RecordStep(
        step=step,
        menu_id=menu.pk if menu is not None else None,
        say=(*lead, _say(menu, prompt)),
        goodbye=_say(menu, goodbye),
        max_seconds=int(max_seconds),
        topic=topic,
        language=language,
        twilio_transcribes=twilio_transcribes(language),
    )


def _after_hours(
    office: Office, menu: IvrMenu | None, *, step: int, lead: Sequence[Utterance] = ()
) -> RecordStep:
    if menu is not None:
        greeting = _recording_or_text(menu, "after_hours_audio", menu.after_hours_text)
        if not greeting:
            greeting = _greeting(office, menu)
    else:
        greeting = (_say(None, f"{_default_greeting(office)} Our office is closed right now."),)
    return record_step(office=office, menu=menu, step=step, lead=(*lead, *greeting))


def _route(
    office: Office, menu: IvrMenu | None, *, is_open: bool, step: int, lead: Sequence[Utterance] = ()
) -> Step:
    """Where a caller goes after the greeting (or after passing on the call-in front menu)."""
    if not is_open:
        return _after_hours(office, menu, step=step, lead=lead)
    if menu is None or not menu.options.all():
        return record_step(office=office, menu=menu, step=step, lead=(*lead, *_greeting(office, menu)))
    return _menu_step(menu, step=step, attempt=1, lead=(*lead, *_greeting(office, menu)))


def _route_label(step: Step) -> str:
    if isinstance(step, MenuStep):
        return "menu"
    if isinstance(step, RecordStep):
        return "voicemail"
    return type(step).__name__


def entry_decision(*, office: Office, config: VoiceConfig, is_open: bool) -> Decision:
    """What a new call hears first: the call-in front menu, else the main menu, else (closed) voicemail."""
    menu, campaign = config.main, config.campaign
    if campaign is not None:
        voice, language = _voice(menu)
        step: Step = MenuStep(
            node=f"{CALLIN_NODE}-{campaign.pk}",
            step=1,
            attempt=1,
            say=(Utterance(text=campaign.prompt_text, voice=voice, language=language),),
            speech=menu.speech_enabled if menu is not None else True,
            hints=tuple(word for words in _CALLIN_WORDS.values() for word in words),
            timeout=menu.gather_timeout_seconds if menu is not None else DEFAULT_GATHER_TIMEOUT,
            language=language,
        )
        entry = {"step": 0, "menu": "", "result": f"call-in menu: {campaign.title}"}
        return Decision(step, entry, campaign=campaign)
    step = _route(office, menu, is_open=is_open, step=1)
    where = "after hours" if not is_open else (menu.name if menu is not None else "no IVR configured")
    return Decision(step, {"step": 0, "menu": "", "result": f"{where}: {_route_label(step)}"})


def choice_decision(
    *,
    office: Office,
    config: VoiceConfig,
    call_sid: str,
    node: str,
    step: int,
    attempt: int,
    digits: str | None,
    speech: str | None,
    is_open: bool,
) -> Decision:
    """What the caller hears after answering the menu ``node`` (at path position ``step``)."""
    kind, pk = parse_node(node)
    via, said = _via(digits, speech)
    entry: dict[str, Any] = {"step": step, "input": said, "via": via}
    if kind == CALLIN_NODE and pk is not None:
        campaign = config.campaign if config.campaign is not None and config.campaign.pk == pk else None
        if campaign is None:  # switched off since this caller heard it: their answer still counts
            campaign = CallInCampaign.objects.filter(office=office, pk=pk).select_related("tag").first()
        if campaign is not None:
            return _callin_choice(
                office,
                config,
                campaign,
                step=step,
                digits=digits,
                speech=speech,
                entry=entry,
                is_open=is_open,
            )
    menu = config.menu(pk) if kind == MENU_NODE else None
    if menu is None:
        menu = config.main
    if menu is None:  # the IVR was removed mid-call: take a message
        entry.update(menu="", result="voicemail (no IVR configured)")
        return Decision(record_step(office=office, menu=None, step=step + 1), entry)
    entry["menu"] = menu.name
    option = option_for(menu.options.all(), digits=digits, speech=speech)
    if option is None:
        if attempt >= menu.max_attempts:
            entry["result"] = f"no valid choice after {attempt} tries: voicemail"
            return Decision(record_step(office=office, menu=menu, step=step + 1), entry)
        entry["result"] = "no input" if via == "none" else "not an option"
        notice = (_say(menu, menu.invalid_input_text),)
        return Decision(_menu_step(menu, step=step + 1, attempt=attempt + 1, lead=notice), entry)
    entry["digit"] = option.digit
    return _option_decision(
        office, config, menu, option, call_sid=call_sid, step=step, is_open=is_open, entry=entry
    )


def _option_decision(
    office: Office,
    config: VoiceConfig,
    menu: IvrMenu,
    option: IvrOption,
    *,
    call_sid: str,
    step: int,
    is_open: bool,
    entry: dict[str, Any],
) -> Decision:
    next_step = step + 1
    if option.action == IvrAction.VOICEMAIL:
        entry["result"] = f"voicemail: {option.topic}" if option.topic else "voicemail"
        return Decision(record_step(office=office, menu=menu, step=next_step, topic=f"o{option.pk}"), entry)
    if option.action == IvrAction.STAFF:
        if is_open and menu.dial_numbers:
            entry["result"] = "talk to staff"
            dial = DialStep(
                call_sid=call_sid,
                step=next_step,
                menu_id=menu.pk,
                say=(),
                numbers=tuple(menu.dial_numbers),
                timeout=menu.dial_timeout_seconds,
            )
            return Decision(dial, entry)
        entry["result"] = "talk to staff: closed, voicemail"
        lead = (_say(menu, menu.staff_unavailable_text),)
        return Decision(record_step(office=office, menu=menu, step=next_step, lead=lead), entry)
    if option.action == IvrAction.INFO:
        entry["result"] = "office information"
        info = (_say(menu, menu.info_text),) if menu.info_text.strip() else ()
        return Decision(_menu_step(menu, step=next_step, attempt=1, lead=info), entry)
    if option.action == IvrAction.LANGUAGE and option.target_menu_id is not None:
        target = config.menu(option.target_menu_id)
        if target is not None:
            entry["result"] = f"switch to {target.name}"
            greeting = _greeting(office, target)
            return Decision(_menu_step(target, step=next_step, attempt=1, lead=greeting), entry)
    entry["result"] = "repeat"
    return Decision(_menu_step(menu, step=next_step, attempt=1, lead=_greeting(office, menu)), entry)


def _callin_choice(
    office: Office,
    config: VoiceConfig,
    campaign: CallInCampaign,
    *,
    step: int,
    digits: str | None,
    speech: str | None,
    entry: dict[str, Any],
    is_open: bool,
) -> Decision:
    menu = config.main
    entry["menu"] = f"call-in: {campaign.title}"
    key = pressed_digit(digits)
    if key is None and speech:
        key = spoken_digit(speech) or next(
            (digit for digit, phrases in _CALLIN_WORDS.items() if any(_contains(speech, p) for p in phrases)),
            None,
        )
    if key in ("1", "2"):
        position = CallInPosition.SUPPORT if key == "1" else CallInPosition.OPPOSE
        entry.update(digit=key, result=f"{position.label.lower()}: {campaign.title}")
        return Decision(
            HangupStep((_say(menu, campaign.thanks_text),)), entry, tally=position, campaign=campaign
        )
    if key == "3":
        entry.update(digit=key, result=f"voicemail: {campaign.tag.name}")
        return Decision(record_step(office=office, menu=menu, step=step + 1, topic=f"c{campaign.pk}"), entry)
    # Anyone else (another topic, or no answer) goes on to the office's usual menu or voicemail.
    routed = _route(office, menu, is_open=is_open, step=step + 1)
    entry["result"] = f"other business: {_route_label(routed)}"
    return Decision(routed, entry)


def staff_missed_step(*, office: Office, config: VoiceConfig, menu_id: int | None, step: int) -> RecordStep:
    """Staff did not pick up (or the line was busy): apologise and take a voicemail."""
    menu = config.menu(menu_id) or config.main
    lead = (_say(menu, menu.staff_unavailable_text),) if menu is not None else ()
    return record_step(office=office, menu=menu, step=step, lead=lead)


def goodbye_step(*, config: VoiceConfig | None, menu_id: int | None) -> HangupStep:
    menu = config.menu(menu_id) if config is not None else None
    return HangupStep((_say(menu, menu.goodbye_text if menu is not None else DEFAULT_GOODBYE),))


def whisper_step() -> AnnounceStep:
    """Said to the staff member who answers, before the caller is connected."""
    return AnnounceStep((Utterance(text=WHISPER),))


def not_in_service_step() -> HangupStep:
    return HangupStep((Utterance(text=NOT_IN_SERVICE),))


# --- admin preview -------------------------------------------------------------------------------------


def menu_preview(menu: IvrMenu) -> list[tuple[str, Step]]:
    """Every answer this menu can give, labelled, for the admin's TwiML preview. Reads; writes nothing."""
    office = menu.office
    config = voice_config_load(office=office)
    preview: list[tuple[str, Step]] = [
        ("Call starts (office open)", _route(office, menu, is_open=True, step=1)),
        (
            "Invalid or no input",
            _menu_step(menu, step=2, attempt=2, lead=(_say(menu, menu.invalid_input_text),)),
        ),
    ]
    if menu.is_main:
        preview.insert(1, ("Call starts (after hours or holiday)", _after_hours(office, menu, step=1)))
    for option in menu.options.all():
        decision = _option_decision(
            office, config, menu, option, call_sid="CA" + "0" * 32, step=1, is_open=True, entry={}
        )
        preview.append((f"Caller presses {option.digit}: {option.get_action_display()}", decision.step))
    preview.append(
        ("Staff do not answer", staff_missed_step(office=office, config=config, menu_id=menu.pk, step=2))
    )
    return preview
