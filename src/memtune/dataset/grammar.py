"""Just enough English morphology to turn a rule's name into questions that read naturally.

"Start the backend" must become "How do I start the backend?", "Which command starts the
backend?" and "What's the rule on starting the backend?". A full NLP stack would be heavy
and slow; agent-memory names are short imperative or noun phrases, so a verb list, a few
inflection rules and an exception table cover them.
"""

from __future__ import annotations

import re
from functools import lru_cache

# Verbs that, as the first word of a note's name, almost always start an instruction.
CLEAR_VERBS = frozenset(
    """
    use run add avoid keep switch prefer create write call ensure make put set install start restart
    stop enable disable configure generate register wrap pass return store validate handle throw catch
    mock pin upgrade downgrade clear delete remove rename move open close define declare follow read
    send include exclude apply verify confirm regenerate rebuild rerun kill source activate deactivate
    export import load save select split merge bump tag document annotate prefix suffix escape quote
    sanitize normalize encode decode hash encrypt decrypt sign authenticate authorize inject memoize
    cache invalidate retry wait poll debounce throttle batch paginate stream upload download compile
    transpile bundle minify serve proxy expose bind mount map convert cast parse serialize deserialize
    reuse extract inline refactor split isolate limit cap bound check lint format test commit push pull
    fetch rebase squash review deploy release publish build seed migrate reset fix update log lock
    unlock sort filter query copy clone fork name type order mark list treat give ask tell let get
    think look prepend append replace skip ignore leave drop specify provide require allow forbid
    point route redirect attach detach watch notify emit subscribe unsubscribe schedule queue delegate
    place group gate guard assert expect prefer pick choose default connect disconnect initialize
    init spin boot shut tear clean purge prune archive backup restore rotate renew revoke grant
    """.split()
)
# Words that are often nouns in headings ("Test database", "Build output"): only a verb when
# followed by something an object usually starts with.
AMBIGUOUS_VERBS = frozenset(
    """
    test build deploy check log cache update lint format seed import export commit merge push release
    review fix change reset load save sort filter query model name type order list map mark lock
    stream batch schedule queue route guard gate group default backup archive hash sign spin boot
    watch point release proxy bundle serve copy clone fork tag document place lock
    """.split()
)
_OBJECT_STARTERS = frozenset(
    "the a an all any your our each every it them this that these those its their new one two both "
    "existing generated local remote only every everything anything something".split()
)
_DOUBLE = frozenset(
    "run set get put stop plan commit submit omit permit admit ship drop skip wrap log map pin tag swap "
    "strip chop shut let cut hit sit begin forget rerun upset reset unpin refer occur control patrol "
    "prefer transfer rebuild chat grab drag drip trim trap flag slip snap spin step stir tap zip "
    "dim dip dub fit hop hug jog knit mop nag nod pat pet rip rob rub sag scan scrub shop slam sob tip "
    "tug wed wet bet bid cap clap clip".split()
)
_IRREGULAR_GERUND = {"be": "being", "see": "seeing", "die": "dying", "lie": "lying", "tie": "tying",
                     "flee": "fleeing", "agree": "agreeing", "free": "freeing", "dye": "dyeing"}
_IRREGULAR_3RD = {"be": "is", "have": "has", "do": "does", "go": "goes", "undo": "undoes", "redo": "redoes"}

DETERMINERS = frozenset(
    "the a an our your this these those my their its each every any all no some which what one".split()
)
MASS_SUFFIXES = ("ness", "ism", "ware", "ing", "ship")
MASS_WORDS = frozenset(
    """
    data code config configuration auth authentication authorization logging security storage
    infrastructure tooling documentation docs research feedback information access performance
    caching hosting networking state css html json yaml sql graphql typescript javascript python
    validation serialization compilation installation observability accessibility reliability
    concurrency navigation localization internationalization i18n monitoring equipment management
    """.split()
)

_GERUND_TO_BASE: dict[str, str] = {}


@lru_cache(maxsize=1)
def third_person_forms() -> frozenset[str]:
    """'binds', 'runs', 'lives' …: what a statement-style name's verb looks like."""
    return frozenset(third_person(v) for v in CLEAR_VERBS | AMBIGUOUS_VERBS)


def gerund(verb: str) -> str:
    """start → starting, run → running, use → using, tie → tying."""
    v = verb.lower()
    if v in _IRREGULAR_GERUND:
        return _IRREGULAR_GERUND[v]
    if v in _DOUBLE:
        return v + v[-1] + "ing"
    if v.endswith("ie"):
        return v[:-2] + "ying"
    if v.endswith(("ee", "ye", "oe")):
        return v + "ing"
    if v.endswith("e") and len(v) > 2:
        return v[:-1] + "ing"
    return v + "ing"


def third_person(verb: str) -> str:
    """start → starts, push → pushes, apply → applies."""
    v = verb.lower()
    if v in _IRREGULAR_3RD:
        return _IRREGULAR_3RD[v]
    if v.endswith(("s", "sh", "ch", "x", "z", "o")):
        return v + "es"
    if len(v) > 1 and v.endswith("y") and v[-2] not in "aeiou":
        return v[:-1] + "ies"
    return v + "s"


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


def looks_plural(word: str) -> bool:
    w = word.lower().strip("`'\".,")
    return len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is", "ics", "sis", "ous"))


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
