"""memtune's command line. Each stage's commands live in their own module."""

from memtune.cli.app import app
from memtune.cli import guidelines as _guidelines  # noqa: F401  (registers commands)
from memtune.cli import ingest as _ingest  # noqa: F401


def main() -> None:
    app()


__all__ = ["app", "main"]
