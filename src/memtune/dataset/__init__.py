"""Dataset stage: guidelines → training examples → a bundle any mainstream fine-tuning tool accepts.

    from memtune import GuidelineStore
    from memtune.dataset import ExportConfig, export_guidelines_as_lora

    result = export_guidelines_as_lora(GuidelineStore(), ExportConfig(output_path="bundle"))

Training and evaluation read bundles with :func:`to_messages`; evaluation and serving
build prompts with :data:`DEFAULT_SYSTEM_PROMPT`, :func:`user_message` and
:func:`system_with_notes` so they match what the adapter was trained on.
"""

from memtune.dataset.bundle import ExportResult, export_guidelines_as_lora
from memtune.dataset.config import ExportConfig
from memtune.dataset.examples import Example, generate_examples
from memtune.dataset.formats import FORMATS, normalize_format, to_messages, to_record
from memtune.dataset.keywords import extract_keywords
from memtune.dataset.paraphrase import Paraphraser
from memtune.dataset.presets import lora_preset, resolve_model, target_modules_for
from memtune.dataset.probes import generate_probes
from memtune.dataset.prompts import DEFAULT_SYSTEM_PROMPT, render_notes, system_with_notes, user_message
from memtune.dataset.questions import PROBE_FAMILIES, TRAIN_FAMILIES

__all__ = [
    "DEFAULT_SYSTEM_PROMPT",
    "FORMATS",
    "PROBE_FAMILIES",
    "TRAIN_FAMILIES",
    "Example",
    "ExportConfig",
    "ExportResult",
    "Paraphraser",
    "export_guidelines_as_lora",
    "extract_keywords",
    "generate_examples",
    "generate_probes",
    "lora_preset",
    "normalize_format",
    "render_notes",
    "resolve_model",
    "system_with_notes",
    "target_modules_for",
    "to_messages",
    "to_record",
    "user_message",
]
