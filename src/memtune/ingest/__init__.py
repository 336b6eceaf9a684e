"""Ingestion: find agent-memory files, read them safely, and store one guideline per rule."""

from memtune.ingest.pipeline import IngestReport, ingest
from memtune.ingest.types import KINDS, MemoryFile, ParsedFile, RuleDraft, SkippedFile
from memtune.secrets import SecretFinding

__all__ = [
    "KINDS",
    "IngestReport",
    "MemoryFile",
    "ParsedFile",
    "RuleDraft",
    "SecretFinding",
    "SkippedFile",
    "ingest",
]
