"""memtune's command line. Each stage's commands live in their own module."""

from memtune.cli.app import app
from memtune.cli import guidelines as _guidelines  # noqa: F401  (registers commands)
from memtune.cli import ingest as _ingest  # noqa: F401
from memtune.cli import export as _export  # noqa: F401
from memtune.cli import evaluate as _evaluate  # noqa: F401
from memtune.cli import serve as _serve  # noqa: F401
from memtune.cli import train as _train  # noqa: F401
from memtune.cli import run as _run  # noqa: F401
from memtune.cli import recipe as _recipe  # noqa: F401


def main() -> None:
    app()


__all__ = ["app", "main"]
from memtune.cli import doctor as _doctor  # noqa: F401
from memtune.cli import export_model as _export_model  # noqa: F401
