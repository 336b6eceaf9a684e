"""The guideline store: schema, migrations and the GuidelineStore API."""

from memtune.store.normalize import normalize_text, normalized_hash
from memtune.store.store import (
    DEFAULT_DB_PATH,
    KNOWN_WORDS_MIN_SHARE,
    RELEVANCE_RATIO,
    GuidelineStore,
    resolve_db_url,
)
from memtune.store.types import (
    DEFAULT_PRIORITY,
    SCOPE_TYPES,
    Guideline,
    GuidelineFilter,
    GuidelineInput,
    GuidelineVersion,
    Source,
    UpsertResult,
    build_filter,
    content_hash,
)

__all__ = [
    "DEFAULT_DB_PATH",
    "DEFAULT_PRIORITY",
    "KNOWN_WORDS_MIN_SHARE",
    "RELEVANCE_RATIO",
    "SCOPE_TYPES",
    "Guideline",
    "GuidelineFilter",
    "GuidelineInput",
    "GuidelineStore",
    "GuidelineVersion",
    "Source",
    "UpsertResult",
    "build_filter",
    "content_hash",
    "normalize_text",
    "normalized_hash",
    "resolve_db_url",
]
