"""ExportConfig: every option of an export, checked once, with every problem reported at once.

Precedence: explicit argument > environment > the base model's recipe (``memtune/recipes``). The environment
honours ``MEMTUNE_EXPORT_<KEY>`` for every export key, ``MEMTUNE_LORA_*`` for the bundle's adapter config, and
the ``AGENT_MEMORY_LORA_*`` names of the Agent Memory export documentation, so existing setups keep working.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from memtune.dataset.formats import FORMATS, normalize_format
from memtune.dataset.split import SPLIT_BY
from memtune.errors import ConfigError
from memtune.recipes import default_recipe, recipe_for
from memtune.store import GuidelineFilter

# field -> environment variables, highest precedence first
ENV_VARS: dict[str, tuple[str, ...]] = {
    "format": ("MEMTUNE_EXPORT_FORMAT", "AGENT_MEMORY_LORA_DEFAULT_FORMAT", "AGENT_MEMORY_LORA_FORMAT"),
    "output_path": ("MEMTUNE_EXPORT_OUTPUT_PATH", "AGENT_MEMORY_LORA_OUTPUT_PATH"),
    "examples_per_guideline": ("MEMTUNE_EXPORT_EXAMPLES_PER_GUIDELINE", "AGENT_MEMORY_LORA_EXAMPLES_PER_GUIDELINE"),
    "include_negative": ("MEMTUNE_EXPORT_INCLUDE_NEGATIVE", "AGENT_MEMORY_LORA_INCLUDE_NEGATIVE"),
    "split_ratio": ("MEMTUNE_EXPORT_SPLIT_RATIO", "AGENT_MEMORY_LORA_SPLIT_RATIO"),
    "split_by": ("MEMTUNE_EXPORT_SPLIT_BY",),
    "target_model": ("MEMTUNE_EXPORT_TARGET_MODEL", "AGENT_MEMORY_LORA_TARGET_MODEL"),
    "generate_script": ("MEMTUNE_EXPORT_GENERATE_SCRIPT", "AGENT_MEMORY_LORA_GENERATE_SCRIPT"),
    "include_metadata": ("MEMTUNE_EXPORT_INCLUDE_METADATA", "AGENT_MEMORY_LORA_INCLUDE_METADATA"),
    "seed": ("MEMTUNE_EXPORT_SEED", "AGENT_MEMORY_LORA_SEED"),
    "rag_fraction": ("MEMTUNE_EXPORT_RAG_FRACTION",),
    "rag_copies": ("MEMTUNE_EXPORT_RAG_COPIES",),
    "fact_rag_copies": ("MEMTUNE_EXPORT_FACT_RAG_COPIES",),
    "fact_share": ("MEMTUNE_EXPORT_FACT_SHARE",),
    "min_topic_questions": ("MEMTUNE_EXPORT_MIN_TOPIC_QUESTIONS",),
    "named_answers": ("MEMTUNE_EXPORT_NAMED_ANSWERS",),
    "rag_gold_first": ("MEMTUNE_EXPORT_RAG_GOLD_FIRST",),
    "control_fraction": ("MEMTUNE_EXPORT_CONTROL_FRACTION",),
    "control_rag_fraction": ("MEMTUNE_EXPORT_CONTROL_RAG_FRACTION",),
    "near_miss_share": ("MEMTUNE_EXPORT_NEAR_MISS_SHARE",),
    "paraphrase_url": ("MEMTUNE_EXPORT_PARAPHRASE_URL", "MEMTUNE_PARAPHRASE_URL"),
    "paraphrase_model": ("MEMTUNE_EXPORT_PARAPHRASE_MODEL", "MEMTUNE_PARAPHRASE_MODEL"),
    "lora_rank": ("MEMTUNE_LORA_RANK", "AGENT_MEMORY_LORA_RANK"),
    "lora_alpha": ("MEMTUNE_LORA_ALPHA", "AGENT_MEMORY_LORA_ALPHA"),
    "lora_dropout": ("MEMTUNE_LORA_DROPOUT", "AGENT_MEMORY_LORA_DROPOUT"),
}
FILTER_ENV_VARS: dict[str, tuple[str, ...]] = {
    "priority_min": ("MEMTUNE_EXPORT_MIN_PRIORITY", "AGENT_MEMORY_LORA_MIN_PRIORITY"),
    "priority_max": ("MEMTUNE_EXPORT_MAX_PRIORITY", "AGENT_MEMORY_LORA_MAX_PRIORITY"),
}
_R = default_recipe().export
"""The data-mix defaults: the default model's recipe (``memtune/recipes``), so the Python API,
``memtune export`` and ``memtune run`` build the same bundle."""
_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f"}


@dataclass
class ExportConfig:
    """Options of one export (seed 004's GuidelineExportConfig, plus what a good dataset needs)."""

    format: str = "messages"
    """messages | alpaca | sharegpt | openai | anthropic | prompt-completion
    (seed 004's 'openai-messages' and 'anthropic-prompts' are accepted)."""
    output_path: str | Path | None = None
    """The bundle directory to create."""
    filter: GuidelineFilter = field(default_factory=GuidelineFilter)
    """Which guidelines to export (all active ones by default; no cap)."""
    examples_per_guideline: int = _R["examples_per_guideline"]
    """Distinct examples per guideline, 1..50."""
    include_negative: bool = _R["include_negative"]
    """About 30 % contrastive examples: the user proposes the anti-pattern, the answer says no."""
    split_ratio: float = _R["split_ratio"]
    """Fraction of examples held out for eval, 0..0.5."""
    split_by: str = "phrasing"
    """phrasing: eval = unseen phrasings of trained guidelines; guideline: hold out whole guidelines."""
    target_model: str | None = None
    """model_type, hub id or local dir; None = the embedded SmolLM2-135M-Instruct (llama)."""
    generate_script: bool = True
    """Write train.py (peft + TRL) and requirements.txt."""
    include_metadata: bool = True
    """Per-example metadata (guideline id/version, name, category, priority, tags, is_negative)."""
    seed: int = 42
    """Everything random (phrasings, split) follows this seed."""
    force: bool = False
    """Replace a non-empty output directory."""
    paraphrase_url: str | None = None
    """OpenAI-compatible endpoint (…/v1) to paraphrase questions; off when None."""
    paraphrase_model: str | None = None
    """Model name sent to the paraphrase endpoint."""
    paraphrase_cache_dir: str | Path | None = None
    """Where paraphrases are cached (default: <memtune cache>/paraphrase)."""
    rag_fraction: float = _R["rag_fraction"]
    """Fraction of examples whose system prompt carries retrieved notes (right note + distractors)."""
    rag_copies: float = _R["rag_copies"]
    """Share of the memory's answers given a second time with the right note in the prompt.
    Unlike rag_fraction these are *added*: the closed-book examples stay, so the adapter learns
    to copy from a note without fewer chances to remember; 0 = none, up to 1."""
    fact_rag_copies: float | None = _R["fact_rag_copies"]
    """The same share for value questions ("Which port …?"), whose wording shares few words with
    the note, so finding the value in a shown note is what retrieval most needs taught; None =
    rag_copies."""
    fact_share: float = _R["fact_share"]
    """Share of each note's closed-book questions that ask for one value it holds ("Which port
    does the worker listen on?") rather than about its topic; 0 = topic questions only."""
    min_topic_questions: int = _R["min_topic_questions"]
    """With value questions on: at least this many of each note's training questions still name its
    topic ("What's the gotcha with the cache lock?"), so the note is recalled when asked by name;
    0 = no floor."""
    named_answers: bool = _R["named_answers"]
    """Open every answer about a note's topic with the note's name ("Torch pin: ALWAYS install …")
    where the name is short enough, instead of rotating through answer openings: the name is then
    the last thing before the content in every example, so content is learned as following it;
    why- and example-questions keep their reason-first / example forms. Copies asked with the note
    in the prompt (``rag_copies``) answer "From the project memory: …" instead, so that with notes
    shown the adapter copies the note rather than choosing a title."""
    rag_gold_first: float = _R["rag_gold_first"]
    """Share of the examples with notes in the prompt that list the right note first, as a retriever
    ranks its best match first; the rest put it at a random place among the near misses. 0 = always
    a random place (the model then learns no preference for the first note)."""
    control_fraction: float = _R["control_fraction"]
    """Fraction of examples about topics the memory does not cover, answered "not in the project
    memory" (teaches the adapter to admit a gap instead of inventing); 0 = none, up to 0.3."""
    control_rag_fraction: float = _R["control_rag_fraction"]
    """Share of those "not in the memory" examples asked with the notes the store's search returns
    for them in the prompt (near misses that do not answer), so the adapter learns to say so
    with notes shown too instead of copying one; 0 = always closed-book."""
    near_miss_share: float = _R["near_miss_share"]
    """Share of those "not in the memory" examples that ask about a thing the memory names for a
    detail it never gives ("Which Go version do we need?" when no note gives one), mostly with the
    notes retrieval shows for them (:mod:`memtune.dataset.near_miss`); 0 = generic topics only."""
    lora_rank: int | None = None
    """Override the size preset's rank."""
    lora_alpha: int | None = None
    """Override alpha (default 2 x rank)."""
    lora_dropout: float | None = None
    """Override the preset's dropout."""

    def __post_init__(self) -> None:
        fmt = normalize_format(self.format) if isinstance(self.format, str) else None
        if fmt:
            self.format = fmt
        if self.output_path is not None and not isinstance(self.output_path, Path):
            self.output_path = Path(str(self.output_path)).expanduser()
        problems = self.problems()
        if problems:
            raise ConfigError(problems, hint="fix the values above (see `memtune export --help`)")

    def problems(self) -> list[str]:
        """Every invalid value, each saying what is wrong and what is allowed."""
        out: list[str] = []
        if normalize_format(self.format) is None:
            out.append(f"format {self.format!r} is not one of {', '.join(FORMATS)} "
                       "(or openai-messages / anthropic-prompts)")
        if self.output_path is None or not str(self.output_path).strip():
            out.append("output path is required (--out DIR or MEMTUNE_EXPORT_OUTPUT_PATH)")
        if not _is_int(self.examples_per_guideline) or not 1 <= self.examples_per_guideline <= 50:
            out.append(f"examples per guideline {self.examples_per_guideline!r} must be a whole number in 1..50")
        if not _is_number(self.split_ratio) or not 0 <= self.split_ratio <= 0.5:
            out.append(f"split ratio {self.split_ratio!r} must be a number in 0..0.5 (the eval fraction)")
        if self.split_by not in SPLIT_BY:
            out.append(f"split by {self.split_by!r} must be one of {', '.join(SPLIT_BY)}")
        if not _is_number(self.rag_fraction) or not 0 <= self.rag_fraction <= 1:
            out.append(f"rag fraction {self.rag_fraction!r} must be a number in 0..1")
        if not _is_number(self.rag_copies) or not 0 <= self.rag_copies <= 1:
            out.append(f"rag copies {self.rag_copies!r} must be a number in 0..1")
        if self.fact_rag_copies is not None and (not _is_number(self.fact_rag_copies)
                                                 or not 0 <= self.fact_rag_copies <= 1):
            out.append(f"fact rag copies {self.fact_rag_copies!r} must be a number in 0..1")
        if not _is_number(self.fact_share) or not 0 <= self.fact_share <= 1:
            out.append(f"fact share {self.fact_share!r} must be a number in 0..1")
        if not _is_int(self.min_topic_questions) or not 0 <= self.min_topic_questions <= 50:
            out.append(f"min topic questions {self.min_topic_questions!r} must be a whole number in 0..50")
        if not _is_number(self.rag_gold_first) or not 0 <= self.rag_gold_first <= 1:
            out.append(f"rag gold first {self.rag_gold_first!r} must be a number in 0..1")
        if not _is_number(self.control_fraction) or not 0 <= self.control_fraction <= 0.3:
            out.append(f"control fraction {self.control_fraction!r} must be a number in 0..0.3")
        if not _is_number(self.control_rag_fraction) or not 0 <= self.control_rag_fraction <= 1:
            out.append(f"control rag fraction {self.control_rag_fraction!r} must be a number in 0..1")
        if not _is_number(self.near_miss_share) or not 0 <= self.near_miss_share <= 1:
            out.append(f"near miss share {self.near_miss_share!r} must be a number in 0..1")
        if not _is_int(self.seed):
            out.append(f"seed {self.seed!r} must be a whole number")
        for label, value in (("include negative", self.include_negative), ("generate script", self.generate_script),
                             ("named answers", self.named_answers),
                             ("include metadata", self.include_metadata), ("force", self.force)):
            if not isinstance(value, bool):
                out.append(f"{label} {value!r} must be true or false")
        if self.lora_rank is not None and (not _is_int(self.lora_rank) or self.lora_rank < 1):
            out.append(f"LoRA rank {self.lora_rank!r} must be a positive whole number")
        if self.lora_alpha is not None and (not _is_number(self.lora_alpha) or self.lora_alpha <= 0):
            out.append(f"LoRA alpha {self.lora_alpha!r} must be a positive number")
        if self.lora_dropout is not None and (not _is_number(self.lora_dropout) or not 0 <= self.lora_dropout < 1):
            out.append(f"LoRA dropout {self.lora_dropout!r} must be a number in 0..1")
        if self.paraphrase_url is not None:
            if not str(self.paraphrase_url).startswith(("http://", "https://")):
                out.append(f"paraphrase URL {self.paraphrase_url!r} must start with http:// or https://")
            if not self.paraphrase_model:
                out.append("a paraphrase URL needs a paraphrase model (--paraphrase-model NAME)")
        if not isinstance(self.filter, GuidelineFilter):
            out.append("filter must be a GuidelineFilter")
        else:
            out.extend(f"filter: {p}" for p in self.filter.problems())
        return out

    @classmethod
    def from_sources(cls, env: Mapping[str, str] | None = None, **explicit: Any) -> ExportConfig:
        """Explicit keyword arguments (None = not given) > environment > the target model's recipe;
        one ConfigError for all."""
        env = os.environ if env is None else env
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(explicit) - known)
        problems = [f"unknown option {k!r}" for k in unknown]
        recipe = recipe_for(explicit.get("target_model") or env.get("MEMTUNE_EXPORT_TARGET_MODEL")
                            or env.get("AGENT_MEMORY_LORA_TARGET_MODEL") or None).export
        values: dict[str, Any] = {}
        for name in known:
            if explicit.get(name) is not None:
                values[name] = explicit[name]
                continue
            for var in ENV_VARS.get(name, ()):
                raw = env.get(var)
                if raw is None or not raw.strip():
                    continue
                parsed, problem = _parse(name, raw)
                if problem:
                    problems.append(f"{var}={raw!r}: {problem}")
                else:
                    values[name] = parsed
                break
            if name not in values and name in recipe:
                values[name] = recipe[name]
        flt = values.get("filter") or GuidelineFilter()
        if isinstance(flt, GuidelineFilter):
            updates: dict[str, Any] = {}
            for attr, names in FILTER_ENV_VARS.items():
                if getattr(flt, attr) is not None:
                    continue
                for var in names:
                    if env.get(var, "").strip():
                        parsed, problem = _parse("int", env[var])
                        if problem:
                            problems.append(f"{var}={env[var]!r}: {problem}")
                        else:
                            updates[attr] = parsed
                        break
            values["filter"] = replace(flt, **updates) if updates else flt
        probe = object.__new__(cls)
        for f in fields(cls):
            default = f.default_factory() if callable(f.default_factory) else f.default  # type: ignore[misc]
            setattr(probe, f.name, values.get(f.name, default))
        if isinstance(probe.format, str) and normalize_format(probe.format):
            probe.format = normalize_format(probe.format)
        problems.extend(probe.problems())
        if problems:
            raise ConfigError(problems, hint="fix the values above (see `memtune export --help`)")
        return cls(**{k: v for k, v in values.items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly view (metadata.json records the config a bundle was made with)."""
        d = asdict(self)
        d["output_path"] = str(self.output_path) if self.output_path is not None else None
        d["paraphrase_cache_dir"] = str(self.paraphrase_cache_dir) if self.paraphrase_cache_dir else None
        d["filter"] = asdict(self.filter)
        return d


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


_INT_FIELDS = {"examples_per_guideline", "min_topic_questions", "seed", "lora_rank", "int"}
_FLOAT_FIELDS = {"split_ratio", "rag_fraction", "rag_copies", "fact_rag_copies", "fact_share", "control_fraction",
                 "control_rag_fraction", "near_miss_share",
                 "rag_gold_first", "lora_alpha", "lora_dropout"}
_BOOL_FIELDS = {"include_negative", "generate_script", "include_metadata", "force", "named_answers"}


def _parse(name: str, raw: str) -> tuple[Any, str | None]:
    """An environment string → a typed value, or a problem message."""
    s = raw.strip()
    if name in _INT_FIELDS:
        try:
            return int(s), None
        except ValueError:
            return None, "not a whole number"
    if name in _FLOAT_FIELDS:
        try:
            v = float(s)
        except ValueError:
            return None, "not a number"
        return (int(v) if name == "lora_alpha" and v.is_integer() else v), None
    if name in _BOOL_FIELDS:
        if s.lower() in _TRUE:
            return True, None
        if s.lower() in _FALSE:
            return False, None
        return None, "not true/false"
    return s, None
