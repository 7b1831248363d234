"""The demo office's voice hotline: an English and a Spanish IVR menu, and a call-in day ready to switch on.

Part of the demo seed (``demo.seed``). ``demo_voice_ensure`` creates what is missing and leaves alone
what exists, so it runs on every start: a demo seeded before the hotline existed gains it, and a menu an
admin has edited (or a campaign someone switched on) stays as it is. Every row passes the model's
``full_clean`` before it is saved, so the demo IVR is one the admin would accept.

The demo office is open Monday to Friday, 9 to 5 Pacific time (``demo.seed``): outside those hours a
call goes straight to the after-hours voicemail, unless the call-in campaign is live (callers hear it first,
at any hour).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from django.db import models

from messages.models import Tag
from offices.models import IvrAction, IvrMenu, IvrOption, Office
from voice.models import CallInCampaign

# The DC and district offices' desk phones that "talk to staff" rings: fictional (555-01xx), and outside
# the area codes the demo's constituents call from.
DEMO_STAFF_NUMBERS = ["+12025550141", "+12025550142"]
CALL_IN_TITLE = "H.R. 1234"
CALL_IN_TAG = "H.R. 1234"

RowT = TypeVar("RowT", bound=models.Model)


@dataclass(frozen=True, slots=True)
class OptionSpec:
    digit: str
    action: IvrAction
    prompt: str
    keywords: str = ""
    topic: str = ""
    queue: str = ""
    target: str = ""  # LANGUAGE only: the name of the menu to switch to


@dataclass(frozen=True, slots=True)
class MenuSpec:
    name: str
    is_main: bool
    language: str
    voice: str
    texts: dict[str, str]
    options: tuple[OptionSpec, ...]


ENGLISH = "Main (English)"
SPANISH = "Español"

# fmt: off
MENUS: tuple[MenuSpec, ...] = (
    MenuSpec(ENGLISH, is_main=True, language="en-US", voice="Polly.Joanna", texts={
        "greeting_text": "Thank you for calling the office of Representative Jordan Rivera, serving "
                         "California's 12th district.",
        "after_hours_text": "You have reached the office of Representative Jordan Rivera. Our office is "
                            "closed right now. We are open Monday to Friday, 9 A.M. to 5 P.M. Pacific time. "
                            "Please leave a message with your name and phone number after the beep, and we "
                            "will get back to you.",
        "info_text": "Our district office is at 100 Market Street, Suite 500, San Francisco. We are open "
                     "Monday to Friday, 9 A.M. to 5 P.M. Pacific time. You can also text this number.",
        "voicemail_prompt": "Please leave your name, your phone number and your message after the beep. "
                            "Press the pound key when you are finished.",
    }, options=(
        OptionSpec("1", IvrAction.VOICEMAIL, "To leave a message about health care, press 1.",
                   "health, medicare, medicaid", topic="Health care", queue="Policy"),
        OptionSpec("2", IvrAction.VOICEMAIL, "For help with a federal agency, such as Social Security, "
                   "Veterans Affairs, immigration or passports, press 2.",
                   "agency, help, social security, veterans, immigration, passport",
                   topic="Casework", queue="Casework"),
        OptionSpec("3", IvrAction.STAFF, "To speak with a member of our staff, press 3.",
                   "staff, person, someone, operator"),
        OptionSpec("4", IvrAction.INFO, "For our address and office hours, press 4.",
                   "address, hours, information"),
        OptionSpec("5", IvrAction.VOICEMAIL, "To leave a message about anything else, press 5.",
                   "message, voicemail"),
        OptionSpec("9", IvrAction.LANGUAGE, "Para español, oprima nueve.", "español, spanish",
                   target=SPANISH),
        OptionSpec("0", IvrAction.REPEAT, "To hear these options again, press 0.", "repeat, again"),
    )),
    MenuSpec(SPANISH, is_main=False, language="es-US", voice="Polly.Lupe", texts={
        "greeting_text": "Gracias por llamar a la oficina del representante Jordan Rivera.",
        "info_text": "Nuestra oficina está en 100 Market Street, suite 500, San Francisco. Abrimos de lunes "
                     "a viernes, de 9 de la mañana a 5 de la tarde, hora del Pacífico.",
        "voicemail_prompt": "Deje su nombre, su número de teléfono y su mensaje después del tono. Oprima la "
                            "tecla de número cuando termine.",
        "staff_unavailable_text": "En este momento no hay nadie disponible para atender su llamada.",
        "invalid_input_text": "Disculpe, no le entendí.",
        "goodbye_text": "Gracias por llamar. Adiós.",
    }, options=(
        OptionSpec("1", IvrAction.VOICEMAIL, "Para dejar un mensaje sobre salud, oprima uno.",
                   "salud, medicare, medicaid", topic="Health care", queue="Policy"),
        OptionSpec("2", IvrAction.VOICEMAIL, "Para ayuda con una agencia federal, como el Seguro Social, "
                   "inmigración o pasaportes, oprima dos.",
                   "agencia, ayuda, seguro social, inmigración, pasaporte",
                   topic="Casework", queue="Casework"),
        OptionSpec("3", IvrAction.STAFF, "Para hablar con nuestro personal, oprima tres.",
                   "personal, persona, alguien"),
        OptionSpec("4", IvrAction.INFO, "Para nuestra dirección y horario, oprima cuatro.",
                   "dirección, horario, información"),
        OptionSpec("5", IvrAction.VOICEMAIL, "Para dejar un mensaje sobre otro tema, oprima cinco.",
                   "mensaje"),
        OptionSpec("9", IvrAction.LANGUAGE, "For English, press 9.", "english, inglés", target=ENGLISH),
        OptionSpec("0", IvrAction.REPEAT, "Para escuchar estas opciones de nuevo, oprima cero.",
                   "repetir, otra vez"),
    )),
)
CALL_IN_PROMPT = (
    "If you are calling about H.R. 1234, the Clean Water Infrastructure Act, press 1 if you support it, "
    "2 if you oppose it, or 3 to leave a message about it. For anything else, please stay on the line."
)
# fmt: on


def demo_voice_ensure(*, office: Office) -> dict[str, int]:
    """Give the demo office its IVR and call-in campaign if it has none; returns what was created.

    Writes only when something is missing (the caller holds the seed's transaction and advisory lock).
    The IVR is created only if the office has no menu at all, and the campaign only if none has its title.
    """
    created = {"IVR menus": 0, "IVR options": 0, "call-in campaigns": 0}
    if not IvrMenu.objects.filter(office=office).exists():
        menus = {spec.name: _menu(office, spec) for spec in MENUS}
        created["IVR menus"] = len(menus)
        for spec in MENUS:
            for option in spec.options:
                _save(
                    IvrOption(
                        menu=menus[spec.name], digit=option.digit, action=option.action,
                        prompt=option.prompt, speech_keywords=option.keywords, topic=option.topic,
                        queue_name=option.queue, target_menu=menus[option.target] if option.target else None,
                    )
                )  # fmt: skip
                created["IVR options"] += 1
    if not CallInCampaign.objects.filter(office=office, title=CALL_IN_TITLE).exists():
        tag = Tag.objects.filter(office=office, name=CALL_IN_TAG).first()
        if tag is not None:  # the seed creates it; an admin may have renamed it since
            # Off: the demo shows switching it on (Call-in tallies → Switch on) and callers tallied live.
            _save(CallInCampaign(office=office, tag=tag, title=CALL_IN_TITLE, prompt_text=CALL_IN_PROMPT))
            created["call-in campaigns"] = 1
    return {name: count for name, count in created.items() if count}


def _menu(office: Office, spec: MenuSpec) -> IvrMenu:
    return _save(
        IvrMenu(
            office=office, name=spec.name, is_main=spec.is_main, language=spec.language, voice=spec.voice,
            dial_numbers=list(DEMO_STAFF_NUMBERS), **spec.texts,
        )
    )  # fmt: skip


def _save(row: RowT) -> RowT:
    row.full_clean()
    row.save()
    return row
