"""Just enough English morphology to turn a rule's name into questions that read naturally.

"Start the backend" must become "How do I start the backend?", "Which command starts the
backend?" and "What's the rule on starting the backend?". Agent-memory names are short
imperative or noun phrases, so which words are verbs, programs or mass nouns comes from the
word lists in ``memtune/data/words.yaml`` (:mod:`memtune.dataset.words`), and the forms
themselves (rebuilding, panicking, goes) from lemminflect's dictionary, which ships in its
wheel and works offline; the data file's exception table overrides it where it is wrong.
"""

from __future__ import annotations

import re
from functools import lru_cache

from lemminflect import getInflection, getLemma

from memtune.dataset import words

# Verbs that, as the first word of a note's name, almost always start an instruction.
CLEAR_VERBS = words.word_list("verbs", "clear")
# Words that are often nouns in headings ("Test database", "Build output"): only a verb when
# followed by something an object usually starts with.
AMBIGUOUS_VERBS = words.word_list("verbs", "ambiguous")
_OBJECT_STARTERS = frozenset(
    "the a an all any your our each every it them this that these those its their new one two both "
    "existing generated local remote only every everything anything something".split()
)
_GERUND_EXCEPTIONS = words.exceptions("gerund")
_THIRD_EXCEPTIONS = words.exceptions("third_person")

DETERMINERS = frozenset(
    "the a an our your this these those my their its each every any all no some which what one".split()
)
MASS_SUFFIXES = tuple(sorted(words.word_list("mass_suffixes")))
MASS_WORDS = words.names_with("mass")

_GERUND_TO_BASE: dict[str, str] = {}


@lru_cache(maxsize=1)
def third_person_forms() -> frozenset[str]:
    """'binds', 'runs', 'lives' …: what a statement-style name's verb looks like."""
    return frozenset(third_person(v) for v in CLEAR_VERBS | AMBIGUOUS_VERBS)


@lru_cache(maxsize=4096)
def _form(verb: str, tag: str) -> str | None:
    forms = getInflection(verb, tag=tag)
    return forms[0] if forms else None


def gerund(verb: str) -> str:
    """start → starting, run → running, rebuild → rebuilding, panic → panicking, tie → tying."""
    v = verb.lower()
    return _GERUND_EXCEPTIONS.get(v) or _form(v, "VBG") or v + "ing"


def third_person(verb: str) -> str:
    """start → starts, push → pushes, apply → applies, go → goes."""
    v = verb.lower()
    return _THIRD_EXCEPTIONS.get(v) or _form(v, "VBZ") or v + "s"


def past_tense(verb: str) -> str:
    """take → took, run → ran."""
    return _form(verb.lower(), "VBD") or verb.lower() + "ed"


def past_participle(verb: str) -> str:
    """write → written, keep → kept."""
    return _form(verb.lower(), "VBN") or verb.lower() + "ed"


def base_from_gerund(word: str) -> str | None:
    """using → use, running → run (only for verbs memtune knows)."""
    if not _GERUND_TO_BASE:
        for v in CLEAR_VERBS | AMBIGUOUS_VERBS:
            _GERUND_TO_BASE.setdefault(gerund(v), v)
    return _GERUND_TO_BASE.get(word.lower())


def starts_with_verb(words: list[str]) -> bool:
    """Is this phrase an instruction ("Run the tests") rather than a noun phrase ("Test data")?"""
    if not words:
        return False
    first = words[0].lower()
    if first in CLEAR_VERBS and first not in AMBIGUOUS_VERBS:
        return len(words) > 1 or first in ("use", "run", "build", "test", "deploy")
    if first in AMBIGUOUS_VERBS:
        if len(words) < 2:
            return False
        nxt = words[1]
        low = nxt.lower()
        return (
            low in _OBJECT_STARTERS
            or nxt.startswith(("`", '"', "'", "./", "/", "-"))
            or "." in nxt.strip(".")
            or (low.endswith("ly") and len(low) > 4)
            or (low.endswith("ed") and len(low) > 4)
            or low in ("up", "down", "out", "off", "in", "early", "often", "first", "again")
        )
    return False


def inflect(vp: str, how: str) -> str:
    """Inflect a verb phrase's verbs: how = 'ing' | '3rd' ("set up and test" → "setting up and testing")."""
    fn = gerund if how == "ing" else third_person
    words = vp.split(" ")
    words[0] = fn(words[0])
    for i in range(1, len(words) - 1):
        if words[i] in ("and", "or") and words[i + 1].lower() in CLEAR_VERBS | AMBIGUOUS_VERBS:
            words[i + 1] = fn(words[i + 1])
    return " ".join(words)


@lru_cache(maxsize=16384)
def looks_plural(word: str) -> bool:
    """tests, indices, children → True; status, news, data → False (lemminflect's dictionary;
    a word it lacks is plural when it ends in a plural -s)."""
    w = word.lower().strip("`'\".,")
    if len(w) <= 3:
        return False
    lemmas = getLemma(w, upos="NOUN", lemmatize_oov=False) if w.isalpha() else ()
    if lemmas:
        return lemmas[0] != w and w in getInflection(lemmas[0], tag="NNS")
    return w.endswith("s") and not w.endswith(("ss", "us", "is", "ics", "sis", "ous"))


_CODEISH_RE = re.compile(r"[_/\\.@#=<>{}$]|^-|[a-z][A-Z]|\d")


@lru_cache(maxsize=16384)
def is_codeish(word: str) -> bool:
    """A token that is an identifier, flag, path or version rather than an English word."""
    w = word.strip("`'\".,;:()")
    return bool(_CODEISH_RE.search(w) or (len(w) > 1 and w.isupper()))


def with_article(np: str) -> str:
    """'Node version' → 'the Node version'; plurals, names, code and mass nouns stay bare."""
    words = np.split()
    if not words:
        return np
    first, last = words[0], words[-1]
    if first.lower() in DETERMINERS or first.startswith(("`", '"', "'")):
        return np
    if len(words) == 1:
        if is_codeish(first) or first[:1].isupper() or looks_plural(first):
            return np
        low = first.lower()
        if low in MASS_WORDS or low.endswith(MASS_SUFFIXES):
            return np
        return "the " + np
    if looks_plural(last) or is_codeish(last):
        return np
    low = last.lower()
    if (low in MASS_WORDS or low.endswith(MASS_SUFFIXES)) and not first[:1].isupper():
        return np
    return "the " + np
