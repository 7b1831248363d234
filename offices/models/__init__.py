"""The tenant's models: the office and its people and numbers (``office``), and its IVR menus (``ivr``).

Django registers an app's models from its ``models`` module; this package re-exports both modules' models, so
``from offices.models import ...`` is the one import path every other module uses.
"""

from offices.models.ivr import (
    AUDIO_EXTENSIONS,
    MAX_DIAL_NUMBERS,
    MAX_GREETING_AUDIO_BYTES,
    IvrAction,
    IvrDigit,
    IvrMenu,
    IvrOption,
    ivr_audio_upload_to,
    validate_greeting_audio_size,
)
from offices.models.office import (
    ASSIGNABLE_ROLES,
    E164_VALIDATOR,
    MESSAGING_SERVICE_SID_VALIDATOR,
    TWILIO_ACCOUNT_SID_VALIDATOR,
    Membership,
    NumberType,
    Office,
    OfficeHoliday,
    OfficeHours,
    OfficePhoneNumber,
    Role,
    TwilioAccount,
    Weekday,
    validate_time_zone,
)

__all__ = [
    "ASSIGNABLE_ROLES",
    "AUDIO_EXTENSIONS",
    "E164_VALIDATOR",
    "MAX_DIAL_NUMBERS",
    "MAX_GREETING_AUDIO_BYTES",
    "MESSAGING_SERVICE_SID_VALIDATOR",
    "TWILIO_ACCOUNT_SID_VALIDATOR",
    "IvrAction",
    "IvrDigit",
    "IvrMenu",
    "IvrOption",
    "Membership",
    "NumberType",
    "Office",
    "OfficeHoliday",
    "OfficeHours",
    "OfficePhoneNumber",
    "Role",
    "TwilioAccount",
    "Weekday",
    "ivr_audio_upload_to",
    "validate_greeting_audio_size",
    "validate_time_zone",
]
