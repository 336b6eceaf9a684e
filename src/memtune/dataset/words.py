"""The dataset generator's word lists, read once from the one data file ``memtune/data/words.yaml``.

Which words are instruction verbs, programs, product names or mass nouns is data, not code:
it lives in one reviewed file (shipped in the wheel) instead of overlapping lists across
modules. Word *forms* come from lemminflect (see :mod:`memtune.dataset.grammar`).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

DATA_FILE = "data/words.yaml"
ROLES = ("program", "name", "mass")


@lru_cache(maxsize=1)
def data() -> dict[str, Any]:
    """The parsed data file (checked: a broken file fails at import, naming the file and key)."""
    text = resources.files("memtune").joinpath(DATA_FILE).read_text(encoding="utf-8")
    raw = yaml.safe_load(text)
    where = f"memtune/{DATA_FILE}"
    for key in ("verbs", "names", "mass_suffixes", "exceptions"):
        if not isinstance(raw, dict) or key not in raw:
            raise ValueError(f"{where}: missing the {key!r} section")
    for word, roles in raw["names"].items():
        if not isinstance(word, str) or not isinstance(roles, list) or not set(roles) <= set(ROLES):
            raise ValueError(f"{where}: names.{word!r} must list roles out of {', '.join(ROLES)}, got {roles!r}")
    return raw


def word_list(*path: str) -> frozenset[str]:
    """A whitespace-separated list, e.g. ``word_list("verbs", "clear")``."""
    node: Any = data()
    for key in path:
        node = node[key]
    return frozenset(node.split())


def names_with(role: str) -> frozenset[str]:
    """Names playing ``role`` (program | name | mass)."""
    return frozenset(w for w, roles in data()["names"].items() if role in roles)


def exceptions(form: str) -> dict[str, str]:
    """Forms the library gets wrong, base word → form (``form``: gerund | third_person)."""
    return dict(data()["exceptions"].get(form) or {})
