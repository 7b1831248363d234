"""The voice hotline: calls, the IVR, voicemails and call-in tallies. The public names are re-exported here.

- :mod:`.calls`: the call row and the webhooks that shape the call (incoming, menu, dial, status);
- :mod:`.voicemail`: voicemail rows and their recording and transcription callbacks;
- :mod:`.recordings`: after the call, in workers: audio download, backend transcription, retention, sweeper;
- :mod:`.tallies`: call-in day positions;
- :mod:`.parking`: callbacks that arrive before their call;
- :mod:`.followups`: the worker's share of a voicemail (tagging the thread, starting the download), drained;
- :mod:`.rows` and :mod:`.config`: the hot rows read and written by hand, and the cached configuration;
- :mod:`.flow` and :mod:`.steps`: the IVR's decisions, and what the caller hears (rendered by
  ``voice.twiml``).
"""

from voice.services.calls import (
    VoiceResult,
    call_receive,
    call_status_apply,
    dial_result_apply,
    menu_choose,
    outcome_for,
    staff_answer_record,
)
from voice.services.followups import voice_followups_drain, voicemail_followup_apply
from voice.services.parking import callback_park, parked_callbacks_apply
from voice.services.recordings import (
    VoicemailRetry,
    VoiceSweepReport,
    voice_sweep,
    voicemail_audio_download,
    voicemail_recording_delete,
    voicemail_recordings_expire,
    voicemail_transcribe,
)
from voice.services.tallies import call_in_tally_record
from voice.services.voicemail import (
    MAX_TRANSCRIPT_CHARS,
    VoicemailPlan,
    plan_from_query,
    plan_query,
    recording_status_apply,
    transcript_state,
    transcription_apply,
    voicemail_record,
)

__all__ = [
    "MAX_TRANSCRIPT_CHARS",
    "VoiceResult",
    "VoiceSweepReport",
    "VoicemailPlan",
    "VoicemailRetry",
    "call_in_tally_record",
    "call_receive",
    "call_status_apply",
    "callback_park",
    "dial_result_apply",
    "menu_choose",
    "outcome_for",
    "parked_callbacks_apply",
    "plan_from_query",
    "plan_query",
    "recording_status_apply",
    "staff_answer_record",
    "transcript_state",
    "transcription_apply",
    "voice_followups_drain",
    "voice_sweep",
    "voicemail_audio_download",
    "voicemail_followup_apply",
    "voicemail_record",
    "voicemail_recording_delete",
    "voicemail_recordings_expire",
    "voicemail_transcribe",
]
