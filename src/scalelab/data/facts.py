"""Synthetic biographies whose knowledge content is known to the bit.

``facts:people=P[,attributes=A][,templates=K][,seed=S]``

The shape of Allen-Zhu and Li's bioS corpus ("Physics of Language Models: Part 3.3,
Knowledge Capacity Scaling Laws", 2024, sec. 2): each of P people has a unique random
name and A attributes, each drawn uniformly and independently from a fixed list, written
as one sentence per attribute in a fixed order, the sentence picked from K templates::

    Baren Daror was born on March 7 1954 . They grew up in Tazil. They studied at
    Keruv University. They majored in Dofen. They work for Lirap. They work in Goven.

Attributes, in order (``attributes=A`` keeps the first A): birth date (12 months x 28
days x 100 years = 33,600 choices, 3 tokens), birth city (200), university (300), major
(100), employer (250), work city (200); entities are two-token words. Every choice is
uniform, so a person's attribute content is exactly ``sum_a log2(choices_a)`` bits
(53.16 bits for all six), and the corpus's is P times that (``attribute_bits``). Names
(first and last, each two syllables of 32 x 64, so M = 2048**2 full names) are drawn
without replacement: their content is ``log2 C(M, P)`` bits (``name_bits``), the set of
names. ``information_bits`` is the sum. The template choice (``log2 K`` per sentence,
``template_bits``) is style, not knowledge, and is reported apart.

Tokens are words (the vocabulary is fixed, 291 words + eos + mask), so every attribute
sits on known token positions (:meth:`FactsSource.layout`), which the capacity measure
(:mod:`scalelab.memorization.capacity`) reads. ``data.tokenizer`` is ignored.

Validation holds other people (``max(8, round(P x val_fraction))`` of them, names
disjoint from the training people's): a model can only guess their attributes, so the
gap between the splits on attribute tokens is memorised knowledge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from scalelab.data.corpus_spec import EXAMPLES, CorpusSpec
from scalelab.data.synthetic import SyntheticSource
from scalelab.data.tokenizer import WordTokenizer
from scalelab.errors import DataError

# --- the fixed world: vocabulary and lists (independent of the corpus seed) ---------------

_ONSETS = ["B", "D", "F", "G", "K", "L", "M", "N", "P", "R", "S", "T", "V", "Z", "H", "J"]
_VOWELS = ["a", "e", "i", "o"]
# 32 first syllables (capitalised) and 64 attached second syllables
FIRST_SYLLABLES = [c + v for c in _ONSETS[:8] for v in _VOWELS]
SECOND_SYLLABLES = ["##" + (c.lower() + v + e) for c in _ONSETS[8:] for v in _VOWELS for e in "nr"]
N_WORDS = len(FIRST_SYLLABLES) * len(SECOND_SYLLABLES)  # two-syllable words: 2048
MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
DAYS = [str(d) for d in range(1, 29)]
YEARS = [str(y) for y in range(1900, 2000)]
_LIST_SEED = 20240404  # the fixed world's lists; not the corpus seed

# (attribute, number of entity choices or None for the date, template phrases). "{}" is the
# value; every phrase starts with the subject: the full name in the first sentence, "They"
# after it (bioS uses pronouns the same way).
ATTRIBUTES: tuple[tuple[str, int | None, tuple[str, ...]], ...] = (
    (
        "birth_date",
        None,
        (
            "was born on {} .",
            "came into the world on {} .",
            "has a birthday on {} .",
            "celebrates a birthday on {} .",
            "was born on the day {} .",
        ),
    ),
    (
        "birth_city",
        200,
        (
            "grew up in {} .",
            "were born in {} .",
            "spent early years in {} .",
            "come from {} .",
            "have roots in {} .",
        ),
    ),
    (
        "university",
        300,
        (
            "studied at {} University .",
            "graduated from {} University .",
            "attended {} University .",
            "was educated at {} University .",
            "went to {} University .",
        ),
    ),
    (
        "major",
        100,
        (
            "majored in {} .",
            "studied the field of {} .",
            "took a degree in {} .",
            "focused on {} .",
            "specialised in {} .",
        ),
    ),
    (
        "employer",
        250,
        (
            "work for {} .",
            "are employed by {} .",
            "have a job at {} .",
            "earn a living at {} .",
            "are on the staff of {} .",
        ),
    ),
    (
        "work_city",
        200,
        (
            "work in {} .",
            "have an office in {} .",
            "commute to {} .",
            "are based in {} .",
            "do business in {} .",
        ),
    ),
)
MAX_TEMPLATES = min(len(t) for _, _, t in ATTRIBUTES)


def _template_words() -> list[str]:
    words: set[str] = {"They"}
    for _, _, phrases in ATTRIBUTES:
        for phrase in phrases:
            words.update(w for w in phrase.split() if w != "{}")
    words.discard(".")
    return [*sorted(words), "##."]


WORDS: list[str] = FIRST_SYLLABLES + SECOND_SYLLABLES + MONTHS + DAYS + YEARS + _template_words()
_ID = {w: i for i, w in enumerate(WORDS)}


def _word_ids(index: np.ndarray) -> np.ndarray:
    """Two-syllable word number -> its two token ids, shape [..., 2]."""
    first, second = np.divmod(index, len(SECOND_SYLLABLES))
    base2 = len(FIRST_SYLLABLES)
    return np.stack([first, base2 + second], axis=-1)


def _entity_lists() -> dict[str, np.ndarray]:
    """Each entity attribute's fixed list of distinct two-syllable word numbers."""
    rng = np.random.default_rng(_LIST_SEED)
    sizes = [(name, n) for name, n, _ in ATTRIBUTES if n is not None]
    words = rng.choice(N_WORDS, size=sum(n for _, n in sizes), replace=False)
    out, at = {}, 0
    for name, n in sizes:
        out[name] = np.sort(words[at : at + n])
        at += n
    return out


ENTITIES = _entity_lists()


def attribute_choices(name: str) -> int:
    for attr, n, _ in ATTRIBUTES:
        if attr == name:
            return n if n is not None else len(MONTHS) * len(DAYS) * len(YEARS)
    raise KeyError(name)


def _log2_binomial(n: int, k: int) -> float:
    """log2 C(n, k), summed term by term (lgamma loses ~1e-10 relative at n = 4M)."""
    return math.fsum(math.log2(n - i) - math.log2(i + 1) for i in range(k))


@dataclass(frozen=True)
class FactsLayout:
    """Where every person's name and attributes sit in a split's token array.

    ``start[p]``: index of the person's first name token (the token before it is ``eos``,
    or the split starts there); ``length[p]``: tokens up to and including their ``eos``;
    ``name[p]``: the 4 name token positions; ``attr[p, a, j]``: position of the j-th token of
    attribute a (``-1`` pads: entities have 2 tokens, the date 3); ``values[p, a]``: the
    index of the chosen value in the attribute's list (months*days*years for the date).
    """

    start: np.ndarray
    length: np.ndarray
    name: np.ndarray
    attr: np.ndarray
    values: np.ndarray
    attributes: tuple[str, ...]

    @property
    def people(self) -> int:
        return len(self.start)


class FactsSource(SyntheticSource):
    """The ``facts`` corpus (module docstring)."""

    kind = "facts"

    def __init__(
        self, people: int, attributes: int = 6, templates: int = 1, seed: int = 0, spec: str = ""
    ) -> None:
        self.people, self.n_attributes, self.templates, self.seed = (
            people,
            attributes,
            templates,
            seed,
        )
        from scalelab.data.corpus_spec import parse_spec

        self.spec = parse_spec(spec or self.canonical())
        where = f"data.corpus = {self.spec.text!r}"
        if people < 1:
            raise DataError(f"{where}: people must be >= 1, got {people}")
        if people > N_WORDS**2 // 4:
            raise DataError(f"{where}: at most {N_WORDS**2 // 4} people (unique names)")
        if not 1 <= attributes <= len(ATTRIBUTES):
            raise DataError(f"{where}: attributes must be 1..{len(ATTRIBUTES)}, got {attributes}")
        if not 1 <= templates <= MAX_TEMPLATES:
            raise DataError(f"{where}: templates must be 1..{MAX_TEMPLATES}, got {templates}")

    @classmethod
    def from_spec(cls, spec: CorpusSpec) -> FactsSource:
        if spec.option("people") is None:
            raise DataError(
                f"data.corpus = {spec.text!r}: a facts corpus needs people, e.g. {EXAMPLES['facts']}"
            )
        people = spec.int_option("people", minimum=1)
        attributes = spec.int_option("attributes", len(ATTRIBUTES), minimum=1)
        templates = spec.int_option("templates", 1, minimum=1)
        seed = spec.int_option("seed", 0)
        assert people is not None and attributes is not None
        assert templates is not None and seed is not None
        return cls(people, attributes, templates, seed, spec.text)

    # --- identity ------------------------------------------------------------------------

    def canonical(self) -> str:
        return (
            f"facts:people={self.people},attributes={self.n_attributes},"
            f"templates={self.templates},seed={self.seed}"
        )

    def slug(self) -> str:
        return f"facts-p{self.people}-a{self.n_attributes}-t{self.templates}-s{self.seed}"

    def tokenizer(self) -> WordTokenizer:
        return WordTokenizer(WORDS)

    def tokenizer_meta(self) -> dict[str, Any]:
        return {"words": WORDS}

    @property
    def attribute_names(self) -> tuple[str, ...]:
        return tuple(a for a, _, _ in ATTRIBUTES[: self.n_attributes])

    def val_people(self, val_fraction: float) -> int:
        return max(8, round(self.people * val_fraction))

    # --- information content -----------------------------------------------------------

    def attribute_bits_per_person(self) -> dict[str, float]:
        return {a: math.log2(attribute_choices(a)) for a in self.attribute_names}

    def info(self) -> dict[str, Any]:
        per = self.attribute_bits_per_person()
        attribute_bits = self.people * sum(per.values())
        name_bits = _log2_binomial(N_WORDS**2, self.people)
        template_bits = self.people * self.n_attributes * math.log2(self.templates)
        return {
            "information_bits": attribute_bits + name_bits,
            "attribute_bits": attribute_bits,
            "name_bits": name_bits,
            "template_bits": template_bits,
            "people": self.people,
            "attributes": [
                {"name": a, "choices": attribute_choices(a), "bits": b, "tokens": _n_tokens(a)}
                for a, b in per.items()
            ],
            "names": N_WORDS**2,
        }

    # --- generation ----------------------------------------------------------------------

    @cached_property
    def _draws(self) -> dict[str, np.ndarray]:
        """Names, values and templates of all people (training first, then validation at the
        largest validation fraction the config allows, so the training split never depends
        on ``val_fraction``)."""
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0xFAC75]))
        total = self.people + self.val_people(0.5)
        names = rng.choice(N_WORDS**2, size=total, replace=False)
        values = np.stack(
            [rng.integers(0, attribute_choices(a), size=total) for a in self.attribute_names],
            axis=1,
        )
        templates = rng.integers(0, self.templates, size=(total, self.n_attributes))
        return {"names": names, "values": values, "templates": templates}

    def _person(self, p: int) -> tuple[list[int], list[int], list[list[int]]]:
        """Token ids of person p's biography (with its eos), name and attribute offsets."""
        d = self._draws
        first, last = divmod(int(d["names"][p]), N_WORDS)
        name_ids = [int(x) for x in _word_ids(np.array([first, last])).reshape(-1)]
        tokens: list[int] = []
        attr_at: list[list[int]] = []
        for a, (attr, _, phrases) in enumerate(ATTRIBUTES[: self.n_attributes]):
            subject = name_ids if a == 0 else [_ID["They"]]
            tokens += subject
            value = _value_ids(attr, int(d["values"][p, a]))
            phrase = phrases[int(d["templates"][p, a])]
            for word in phrase.split():
                if word == "{}":
                    attr_at.append(list(range(len(tokens), len(tokens) + len(value))))
                    tokens += value
                else:
                    tokens.append(_ID["##." if word == "." else word])
        tokens.append(len(WORDS))  # eos
        return tokens, [0, 1, 2, 3], attr_at

    def _split(self, people: range) -> tuple[np.ndarray, FactsLayout]:
        parts: list[list[int]] = []
        start, length, name, attr = [], [], [], []
        pos = 0
        for p in people:
            tokens, name_at, attr_at = self._person(p)
            parts.append(tokens)
            start.append(pos)
            length.append(len(tokens))
            name.append([pos + i for i in name_at])
            attr.append([[pos + i for i in at] + [-1] * (3 - len(at)) for at in attr_at])
            pos += len(tokens)
        flat = np.fromiter((t for part in parts for t in part), dtype=np.uint32, count=pos)
        layout = FactsLayout(
            start=np.asarray(start, dtype=np.int64),
            length=np.asarray(length, dtype=np.int64),
            name=np.asarray(name, dtype=np.int64),
            attr=np.asarray(attr, dtype=np.int64).reshape(len(start), self.n_attributes, 3),
            values=self._draws["values"][people.start : people.stop],
            attributes=self.attribute_names,
        )
        return flat, layout

    def layout(self, split: str, val_fraction: float) -> tuple[np.ndarray, FactsLayout]:
        """The tokens of ``split`` ("train" or "val") and where each fact sits in them."""
        if split == "train":
            return self._split(range(self.people))
        if split == "val":
            return self._split(range(self.people, self.people + self.val_people(val_fraction)))
        raise DataError(f"split must be 'train' or 'val', got {split!r}")

    def generate(self, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
        return self.layout("train", val_fraction)[0], self.layout("val", val_fraction)[0]


def _n_tokens(attr: str) -> int:
    return 3 if attr == "birth_date" else 2


def _value_ids(attr: str, value: int) -> list[int]:
    if attr == "birth_date":
        month, rest = divmod(value, len(DAYS) * len(YEARS))
        day, year = divmod(rest, len(YEARS))
        return [_ID[MONTHS[month]], _ID[DAYS[day]], _ID[YEARS[year]]]
    return [int(x) for x in _word_ids(ENTITIES[attr][value : value + 1]).reshape(-1)]


__all__ = ["ATTRIBUTES", "WORDS", "FactsLayout", "FactsSource", "attribute_choices"]
