"""How near-identical two constituent messages are: the measure behind campaign detection.

Organised campaigns send one script through thousands of people, and each copy drifts: an opener ("Hi,"),
a closer ("- Maria from 94110"), a sentence of the sender's own, typos, a town or bill number filled in
differently, and in voicemail the noise of speech-to-text. The measure has to see through all of that and
still keep apart two scripts on the same topic.

- **Normal form.** Accents stripped (NFKD), lower case, every run of non-alphanumerics one space, and every
  run of digits "0" (bill numbers and ZIPs are placeholders more often than content).
- **Shingles.** Overlapping character 5-grams of the normal form, hashed to 32 bits with CRC-32 (stable
  across processes, unlike ``hash``). A typo changes only the five shingles that cover it, where a word
  n-gram would lose every n-gram touching the word; a filled-in placeholder changes a handful.
- **Containment, not Jaccard.** A message belongs to a script when it *contains* most of the script's
  shingles: ``|script ∩ message| / |script|``. Additions of the sender's own (any length, anywhere) do not
  lower it; only what is missing from the script does. Two messages are compared by the containment of the
  smaller in the larger.
- **Sketch.** The ``SKETCH_SIZE`` smallest shingle hashes (a bottom-k sketch, one-permutation MinHash). Two
  messages that share most of their text share most of their sketch, so "shares at least one sketch value"
  finds the candidates (with a GIN index in PostgreSQL, or a dict in memory) and the exact containment then
  decides. Unrelated texts almost never share one.
- **The personal part.** A member's sentences whose shingles are mostly absent from the script: what the
  sender added.

Why not datasketch's MinHash LSH: it estimates Jaccard, which a long personal addition pulls down, and its
index lives in one process's memory (or a Redis it manages), while every worker here needs the same index,
which the database already is; it would also bring numpy and scipy into the default install.

Status: the measure and the batch grouping only. Its precision and recall on a labelled corpus are not
measured yet, and nothing stores campaigns yet; the tests pin the behaviour on hand-made cases.
"""

from __future__ import annotations

import heapq
import re
import unicodedata
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

SHINGLE = 5
SKETCH_SIZE = 24
# The CRMs group mail that shares about 70 % of its text; an office can move it (CorrespondenceSettings).
DEFAULT_THRESHOLD = 0.7
# A script shorter than this (normal form) is too generic to define a campaign ("vote no", "thank you").
MIN_SCRIPT_CHARS = 60
# A sentence is the sender's own when less than this share of its shingles is in the script.
PERSONAL_BELOW = 0.5
# A personal part this long, or one with a casework word, asks for a person to read it.
LONG_PERSONAL_CHARS = 160
CASEWORK_WORDS = (
    "help",
    "urgent",
    "emergency",
    "claim",
    "benefits",
    "deployed",
    "evicted",
    "eviction",
    "denied",
    "cut off",
    "disability",
    "passport",
    "visa",
    "my son",
    "my daughter",
    "my husband",
    "my wife",
    "my mother",
    "my father",
    "please call",
    "call me",
    "case",
)

_NON_WORD = re.compile(r"[^0-9a-z]+")
_DIGITS = re.compile(r"[0-9]+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_CASEWORK = re.compile(r"\b(?:" + "|".join(re.escape(w) for w in CASEWORK_WORDS) + r")\b")


def normal_form(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    ascii_only = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()
    return _DIGITS.sub("0", _NON_WORD.sub(" ", ascii_only)).strip()


def shingles(text: str) -> frozenset[int]:
    """The hashed character 5-grams of ``text``'s normal form (the whole of a shorter text, once)."""
    norm = normal_form(text)
    if len(norm) <= SHINGLE:
        return frozenset((zlib.crc32(norm.encode()),)) if norm else frozenset()
    data = norm.encode()
    crc = zlib.crc32
    return frozenset(crc(data[i : i + SHINGLE]) for i in range(len(data) - SHINGLE + 1))


def sketch(features: Iterable[int]) -> list[int]:
    """The ``SKETCH_SIZE`` smallest hashes, ascending, as signed 32-bit values (a PostgreSQL integer)."""
    return [h - (1 << 31) for h in heapq.nsmallest(SKETCH_SIZE, features)]


def containment(part: frozenset[int], whole: frozenset[int]) -> float:
    """The share of ``part`` found in ``whole`` (0.0 for an empty part)."""
    if not part:
        return 0.0
    return len(part & whole) / len(part)


def mutual(a: frozenset[int], b: frozenset[int]) -> float:
    """How near-identical two messages are: the containment of the smaller in the larger."""
    return containment(a, b) if len(a) <= len(b) else containment(b, a)


@dataclass(frozen=True, slots=True)
class Fingerprint:
    features: frozenset[int]
    sketch: tuple[int, ...]
    length: int  # of the normal form

    @classmethod
    def of(cls, text: str) -> Fingerprint:
        features = shingles(text)
        return cls(features, tuple(sketch(features)), len(normal_form(text)))


def sentences(text: str) -> list[str]:
    parts = [part.strip() for part in _SENTENCE_END.split(text)]
    return [part for part in parts if part]


def personal_part(text: str, script: frozenset[int]) -> str:
    """The sentences of ``text`` that are the sender's own: mostly absent from the script's shingles.

    A transcript has no sentence punctuation; it is cut into runs of about twelve words instead."""
    pieces = sentences(text)
    if len(pieces) <= 1 and len(text.split()) > 24:  # noqa: PLR2004 - a transcript's one long "sentence"
        words = text.split()
        pieces = [" ".join(words[i : i + 12]) for i in range(0, len(words), 12)]
    own = [piece for piece in pieces if containment(shingles(piece), script) < PERSONAL_BELOW]
    return " ".join(own)


def needs_reading(personal: str) -> bool:
    """A personal part long enough, or with a casework word, that a person should read the message."""
    return len(personal) >= LONG_PERSONAL_CHARS or bool(_CASEWORK.search(normal_form(personal)))


# --- grouping a batch --------------------------------------------------------------------------------------

# Each sketch value remembers this many of the latest texts that have it: a big campaign's members share
# values, and any recent member stands for the rest, so candidate lookup stays cheap however big it grows.
_INDEX_DEPTH = 24
# Each text is compared exactly with at most this many candidates, those sharing the most sketch values.
_CANDIDATES = 8


def group(
    texts: Sequence[str],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    min_size: int = 2,
    fingerprints: Sequence[Fingerprint] | None = None,
) -> list[int | None]:
    """Cluster ``texts``: a label per text (the index of its group's first text), None for one in no group.

    Each text is linked to every earlier candidate it is near-identical to (``mutual`` ≥ ``threshold``);
    groups are the connected sets. Candidates come from the sketch index, at most ``_CANDIDATES`` per text, so
    the cost grows with the number of texts, not of pairs. Texts shorter than ``MIN_SCRIPT_CHARS`` and
    groups smaller than ``min_size`` get None."""
    prints = list(fingerprints) if fingerprints is not None else [Fingerprint.of(t) for t in texts]
    parent = list(range(len(prints)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    index: dict[int, list[int]] = {}
    for i, fp in enumerate(prints):
        if fp.length < MIN_SCRIPT_CHARS:
            continue
        for j in candidates(fp, index):
            if mutual(fp.features, prints[j].features) >= threshold:
                a, b = root(i), root(j)
                if a != b:
                    parent[max(a, b)] = min(a, b)
        index_add(index, fp, i)
    sizes: dict[int, int] = {}
    roots = [root(i) if prints[i].length >= MIN_SCRIPT_CHARS else -1 for i in range(len(prints))]
    for r in roots:
        sizes[r] = sizes.get(r, 0) + 1
    return [r if r >= 0 and sizes[r] >= min_size else None for r in roots]


def candidates(fp: Fingerprint, index: dict[int, list[int]], *, limit: int = _CANDIDATES) -> list[int]:
    """The indexed items sharing the most sketch values with ``fp`` (at least one), best first."""
    shared: dict[int, int] = {}
    for value in fp.sketch:
        for item in index.get(value, ()):
            shared[item] = shared.get(item, 0) + 1
    return [item for item, _ in heapq.nlargest(limit, shared.items(), key=lambda pair: pair[1])]


def index_add(index: dict[int, list[int]], fp: Fingerprint, item: int) -> None:
    for value in fp.sketch:
        bucket = index.setdefault(value, [])
        bucket.append(item)
        if len(bucket) > _INDEX_DEPTH:
            del bucket[0]
