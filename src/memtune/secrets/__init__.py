"""Secret detection and redaction, below every package that reads or stores memory text.

The store's write path, ingestion and the leak checks of evaluation all call
:func:`redact_secrets`; it lives here, on the bottom layer, so none of them has to import
another to reach it.
"""

from memtune.secrets.detect import MARKER, SecretFinding, is_placeholder, redact_secrets

__all__ = ["MARKER", "SecretFinding", "is_placeholder", "redact_secrets"]
