"""What SynthBEAT's speakers say: keyword families, held-out synonyms and sentence templates.

Each gesture family (events.GESTURE_FAMILIES) has words that trigger its gesture.
Some of its words are *held out*: they never occur in train or validation takes,
only in test takes, so a model that maps the meaning of words (through word
vectors) rather than memorising word identities can be told apart from one that
does not. Every keyword is a lowercase word of GloVe 6B / FastText's vocabulary.

Words are grouped by grammatical role inside a family ("adj", "verb", ...), and the
templates name a role (`{big:adj}`), so a held-out synonym only replaces words it
can stand in for and sentences stay English: "the market will soar next year".
Each word carries an intensity (0..1): "enormous" is a bigger gesture than "big",
which the semantic annotation turns into the low/mid/high level.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from training.synthbeat.events import GESTURE_FAMILIES

# BEAT's semantic categories; each family keeps one.
DEICTIC, ICONIC, METAPHORIC = "deictic", "iconic", "metaphoric"

SEMANTIC_TYPE: dict[str, str] = {
    "big": ICONIC,
    "small": ICONIC,
    "up": ICONIC,
    "down": ICONIC,
    "self": DEICTIC,
    "you": DEICTIC,
    "there": DEICTIC,
    "think": METAPHORIC,
    "all": METAPHORIC,
    "no": METAPHORIC,
}


@dataclass(frozen=True)
class Role:
    """Words of one family that fill the same kind of slot: (word, intensity) pairs."""

    train: tuple[tuple[str, float], ...]
    held_out: tuple[tuple[str, float], ...] = ()


# family -> role -> words. Intensities order synonyms by how strongly they are gestured.
LEXICON: dict[str, dict[str, Role]] = {
    "big": {
        "adj": Role(
            (("big", 0.55), ("large", 0.5), ("huge", 0.8), ("giant", 0.8), ("massive", 0.85), ("enormous", 0.9)),
            (("gigantic", 0.95), ("immense", 0.9)),
        ),
    },
    "small": {
        "adj": Role((("small", 0.5), ("little", 0.45), ("tiny", 0.8)), (("miniature", 0.75),)),
    },
    "up": {
        # "surge" and "skyrocket" keep the family's verbs from being outnumbered by "down"'s: in
        # GloVe, "soar"'s nearest words are its antonyms "plummet" and "plunge" (shared contexts).
        "verb": Role((("rise", 0.6), ("climb", 0.7), ("surge", 0.8), ("skyrocket", 0.95)), (("soar", 0.9),)),
        "adv": Role((("up", 0.6),)),
        "adj": Role((("high", 0.7),)),
    },
    "down": {
        "verb": Role((("fall", 0.6), ("drop", 0.7), ("sink", 0.75)), (("descend", 0.7),)),
        "adv": Role((("down", 0.6),)),
        "adj": Role((("low", 0.55),)),
    },
    "self": {
        "subj": Role((("i", 0.4),)),
        "obj": Role((("me", 0.55),)),
        "refl": Role((("myself", 0.8),), (("ourselves", 0.85),)),
    },
    "you": {
        "subj": Role((("you", 0.55),)),
        "poss": Role((("your", 0.45),)),
        # Only in slots where both read well: "be honest with you / yourself".
        "obj": Role((("you", 0.6),), (("yourself", 0.8),)),
    },
    "there": {
        "loc": Role((("there", 0.6),)),
        "det": Role((("that", 0.5),)),
        "prep": Role((("over", 0.55), ("across", 0.65), ("behind", 0.6)), (("beyond", 0.8),)),
    },
    "think": {
        "clause": Role((("think", 0.45), ("believe", 0.6), ("imagine", 0.7), ("guess", 0.4)), (("suppose", 0.5),)),
        "about": Role((("think", 0.5), ("dream", 0.7)), (("ponder", 0.75),)),
        "noun": Role((("idea", 0.6), ("thought", 0.5), ("concept", 0.7))),
    },
    "all": {
        "det": Role((("all", 0.6),)),
        "every": Role((("every", 0.55),)),
        "people": Role((("everyone", 0.7), ("everybody", 0.7))),
        "thing": Role((("everything", 0.75),)),
        "adj": Role((("whole", 0.6), ("full", 0.6), ("complete", 0.65)), (("entire", 0.7),)),
    },
    "no": {
        "neg": Role((("not", 0.45), ("never", 0.8))),
        "pron": Role((("nothing", 0.7),), (("none", 0.7),)),
        "interj": Role((("no", 0.65),)),
    },
}

# Neutral words for the rest of a sentence: they carry beat gestures only.
FILLERS: dict[str, tuple[str, ...]] = {
    "noun": (
        "building", "house", "garden", "bridge", "tower", "museum", "station", "library", "office",
        "kitchen", "boat", "car", "machine", "project", "company", "story", "problem", "plan",
        "budget", "window", "table", "painting", "book", "picture", "road", "park", "school", "shop",
    ),
    "movnoun": ("market", "price", "temperature", "water", "number", "rate", "level", "cost"),
    "flyer": ("bird", "kite", "balloon", "plane", "rocket", "eagle"),
    "place": ("hills", "river", "mountains", "lake", "forest", "valley", "street", "ocean", "fields"),
    "person": ("friend", "teacher", "brother", "sister", "neighbor", "doctor", "boss", "uncle"),
    "people": ("people", "students", "workers", "children", "guests", "players"),
    "group": ("team", "class", "family", "village", "company", "club"),
    "event": ("meeting", "festival", "storm", "election", "match", "wedding", "concert"),
    "period": ("day", "week", "summer", "morning", "evening", "year", "winter"),
    "adj": (
        "old", "new", "quiet", "busy", "famous", "beautiful", "strange", "modern", "simple", "bright",
        "dark", "friendly", "lovely", "green", "wooden", "ancient", "cheap", "expensive", "red", "warm",
    ),
    "verb": (
        "see", "visit", "build", "paint", "find", "sell", "buy", "fix", "open", "watch", "clean",
        "design", "describe", "explore", "remember", "finish", "share", "check",
    ),
    "time": (
        "tomorrow", "today", "soon", "later", "next year", "last week", "this morning", "next month",
        "on monday", "on friday", "last summer", "in the spring",
    ),
}

# About forty sentences. `{family:role}` is a keyword slot, `{filler}` a neutral slot,
# anything else is said as written. No literal word here may be a keyword (checked).
TEMPLATES: tuple[str, ...] = (
    "{self:subj} {think:clause} the {movnoun} will {up:verb} {time}",
    "{self:subj} {think:clause} the {movnoun} will {down:verb} {time}",
    "{you:subj} can see {there:det} {big:adj} {noun} {there:loc}",
    "look at {there:det} {big:adj} {noun} {there:prep} the {place}",
    "my {person} has a {small:adj} {noun} near the {place}",
    "{all:people} in the {group} wanted to {verb} the {noun}",
    "{no:interj} {self:subj} do {no:neg} want to {verb} the {noun} {time}",
    "{self:subj} had a {adj} {think:noun} about the {noun}",
    "the {noun} {there:prep} the {place} is {big:adj}",
    "be honest with {you:obj} about the {noun}",
    "{all:det} the {people} in the {group} were {small:adj}",
    "{self:subj} will {no:neg} forget the {adj} {noun}",
    "{no:pron} changed after the {event}",
    "{you:subj} should {think:about} about the {noun} {time}",
    "{self:subj} {think:about} about {you:poss} {noun} {all:every} {period}",
    "the {movnoun} went {up:adv} and then {down:adv} again",
    "nobody except {self:refl} saw the {adj} {noun}",
    "nobody but {self:refl} could {verb} the {noun}",
    "{all:thing} in the {noun} was {adj}",
    "the {movnoun} is very {up:adj} {time}",
    "the {movnoun} was very {down:adj} {time}",
    "{you:subj} can {verb} the {noun} {there:loc}",
    "please give {self:obj} the {small:adj} {noun}",
    "{you:poss} {think:noun} was {adj} and {big:adj}",
    "{self:subj} spent the {all:adj} {period} in the {noun}",
    "{all:det} the {people} {there:prep} the {place} wanted a {big:adj} {noun}",
    "{self:subj} {think:clause} {you:subj} will {verb} the {noun}",
    "the {movnoun} will {up:verb} and then {down:verb}",
    "{self:subj} have {no:neg} seen such a {big:adj} {noun}",
    "the {adj} {noun} had a {small:adj} {noun}",
    "{you:subj} need to {verb} {you:poss} {noun} {time}",
    "{no:pron} happened at the {event} {time}",
    "{self:subj} could {no:neg} stop the {movnoun} from going {up:adv}",
    "{there:det} {noun} {there:prep} the {place} is {adj}",
    "{you:subj} should {think:about} about {all:thing}",
    "the {small:adj} {flyer} began to {up:verb}",
    "then the {flyer} started to {down:verb} slowly",
    "trust {self:obj} the {noun} is {big:adj}",
    "{all:people} was talking about the {adj} {noun}",
    "my {person} told {self:obj} about a {big:adj} {noun} {there:prep} the {place}",
    "the {noun} is {no:neg} as {adj} as {you:subj} {think:clause}",
    "{self:subj} looked {up:adv} and saw a {big:adj} {flyer}",
    "put the {small:adj} {noun} {down:adv} on the table",
    "the {movnoun} can {no:neg} {up:verb} forever",
    "{no:interj} {there:det} {noun} is too {small:adj}",
    "take care of {you:obj} during the {event}",
    "the {adj} {noun} was near the {place} {time}",
    "my {person} likes to {verb} the {noun} {time}",
    "{all:det} the {people} came to the {event} {time}",
)

# Words that never get a beat gesture of their own.
FUNCTION_WORDS: frozenset[str] = frozenset(
    """a an the and or but so then to of in on at by for with from about near as such very too
    is was were are be been has have had will would can could should do did it its my his her
    their our this these than again during except please nobody going""".split()
)

_SLOT = re.compile(r"^\{([a-z]+)(?::([a-z]+))?\}$")


@dataclass(frozen=True)
class Token:
    """One word of a generated sentence; `family` is set for keywords."""

    text: str
    family: str | None = None
    intensity: float = 0.0
    held_out: bool = False


def training_words() -> dict[str, list[str]]:
    """Per family, the keywords that may occur in train and validation takes."""
    return {f: sorted({w for role in LEXICON[f].values() for w, _ in role.train}) for f in GESTURE_FAMILIES}


def held_out_words() -> dict[str, list[str]]:
    """Per family, the synonyms that occur only in test takes."""
    return {f: sorted({w for role in LEXICON[f].values() for w, _ in role.held_out}) for f in GESTURE_FAMILIES}


def keyword_family(word: str) -> str | None:
    """The family a keyword belongs to (train or held out), else None."""
    return _KEYWORD_FAMILY.get(word.lower())


def is_content_word(word: str) -> bool:
    """A word that may carry a beat gesture: neither a function word nor a keyword."""
    w = word.lower()
    return w not in FUNCTION_WORDS and w not in _KEYWORD_FAMILY


def _slot_can_hold_out(slot: str) -> bool:
    m = _SLOT.match(slot)
    return bool(m and m.group(2) and LEXICON[m.group(1)][m.group(2)].held_out)


def template_can_hold_out(template: str) -> bool:
    """Whether a template has a slot that a held-out synonym can fill."""
    return any(_slot_can_hold_out(part) for part in template.split())


def make_sentence(rng: np.random.Generator, *, held_out_prob: float = 0.0, template: str | None = None) -> list[Token]:
    """Fill a template (random unless given). Each slot that has held-out synonyms takes
    one with probability `held_out_prob`; 0 for train and validation takes."""
    if not 0.0 <= held_out_prob <= 1.0:
        raise ValueError(f"held_out_prob must be in [0, 1], got {held_out_prob}")
    if template is None:
        template = TEMPLATES[int(rng.integers(len(TEMPLATES)))]
    tokens: list[Token] = []
    for part in template.split():
        m = _SLOT.match(part)
        if m is None:
            tokens.append(Token(part))
        elif m.group(2) is None:
            choices = FILLERS[m.group(1)]
            tokens += [Token(w) for w in choices[int(rng.integers(len(choices)))].split()]
        else:
            family, role = m.group(1), LEXICON[m.group(1)][m.group(2)]
            use_held = bool(role.held_out) and rng.random() < held_out_prob
            pool = role.held_out if use_held else role.train
            word, intensity = pool[int(rng.integers(len(pool)))]
            tokens.append(Token(word, family, intensity, use_held))
    # "a enormous tower" -> "an enormous tower"
    for i, (tok, nxt) in enumerate(zip(tokens, tokens[1:])):
        if tok.text == "a" and tok.family is None and nxt.text[0] in "aeio":
            tokens[i] = Token("an")
    return tokens


def check_lexicon() -> None:
    """Raise ValueError when the lexicon contradicts itself (run by the tests)."""
    if set(LEXICON) != set(GESTURE_FAMILIES) or set(SEMANTIC_TYPE) != set(GESTURE_FAMILIES):
        raise ValueError("LEXICON and SEMANTIC_TYPE must cover exactly GESTURE_FAMILIES")
    train = {w for ws in training_words().values() for w in ws}
    held = {w for ws in held_out_words().values() for w in ws}
    if train & held:
        raise ValueError(f"words both trained and held out: {sorted(train & held)}")
    for family, roles in LEXICON.items():
        for name, role in roles.items():
            if not role.train:
                raise ValueError(f"{family}:{name} has no training words")
            for w, level in role.train + role.held_out:
                if w != w.lower() or " " in w or not 0.0 < level <= 1.0:
                    raise ValueError(f"{family}:{name}: bad entry {(w, level)}")
    owner: dict[str, str] = {}
    for family, roles in LEXICON.items():
        for role in roles.values():
            for w, _ in role.train + role.held_out:
                if owner.setdefault(w, family) != family:
                    raise ValueError(f"{w!r} is in two families, {owner[w]} and {family}")
    for kind, words in FILLERS.items():
        for phrase in words:
            for w in phrase.split():
                if w in owner:
                    raise ValueError(f"filler {kind}:{phrase!r} contains the keyword {w!r}")
    for t in TEMPLATES:
        for part in t.split():
            m = _SLOT.match(part)
            if m is None:
                if part in owner or not part.isalpha() or part != part.lower():
                    raise ValueError(f"template {t!r}: literal word {part!r} is a keyword or not a plain word")
            elif m.group(2) is None:
                if m.group(1) not in FILLERS:
                    raise ValueError(f"template {t!r}: unknown filler {part}")
            elif m.group(1) not in LEXICON or m.group(2) not in LEXICON[m.group(1)]:
                raise ValueError(f"template {t!r}: unknown slot {part}")


_KEYWORD_FAMILY: dict[str, str] = {
    w: family for family, roles in LEXICON.items() for role in roles.values() for w, _ in role.train + role.held_out
}
