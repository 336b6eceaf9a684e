"""ExportConfig: aliases, precedence explicit > environment > default, every problem at once."""

from __future__ import annotations

import pytest

from memtune.dataset import ExportConfig
from memtune.errors import ConfigError
from memtune.recipes import default_recipe
from memtune.store import GuidelineFilter


def test_defaults_and_seed_004_aliases(tmp_path):
    c = ExportConfig(output_path=tmp_path / "b")
    recipe = default_recipe().export  # the data mix is the recipe's, whichever door builds the config
    assert (c.format, c.examples_per_guideline, c.include_negative, c.split_ratio, c.split_by, c.seed) == (
        "messages", recipe["examples_per_guideline"], True, recipe["split_ratio"], "phrasing", 42)
    assert 0 < c.rag_fraction < 1 and c.generate_script and c.include_metadata and not c.force
    assert ExportConfig(output_path="x", format="openai-messages").format == "openai"
    assert ExportConfig(output_path="x", format="anthropic-prompts").format == "anthropic"
    assert ExportConfig(output_path="x", format="Prompt_Completion").format == "prompt-completion"


def test_environment_is_read_with_precedence():
    env = {
        "AGENT_MEMORY_LORA_DEFAULT_FORMAT": "alpaca",
        "AGENT_MEMORY_LORA_EXAMPLES_PER_GUIDELINE": "3",
        "AGENT_MEMORY_LORA_INCLUDE_NEGATIVE": "false",
        "AGENT_MEMORY_LORA_OUTPUT_PATH": "./lora-export",
        "AGENT_MEMORY_LORA_RANK": "16",
        "AGENT_MEMORY_LORA_ALPHA": "32",
        "AGENT_MEMORY_LORA_DROPOUT": "0.05",
        "AGENT_MEMORY_LORA_TARGET_MODEL": "llama",
        "AGENT_MEMORY_LORA_MIN_PRIORITY": "70",
        "MEMTUNE_EXPORT_SEED": "7",
        "MEMTUNE_EXPORT_RAG_COPIES": "0.25",
    }
    c = ExportConfig.from_sources(env=env)
    assert (c.format, c.examples_per_guideline, c.include_negative, str(c.output_path)) == (
        "alpaca", 3, False, "lora-export")
    assert (c.lora_rank, c.lora_alpha, c.lora_dropout, c.target_model, c.seed) == (16, 32, 0.05, "llama", 7)
    assert c.filter.priority_min == 70 and c.rag_copies == 0.25
    # MEMTUNE_* beats AGENT_MEMORY_LORA_*; an explicit argument beats both
    env["MEMTUNE_EXPORT_FORMAT"] = "sharegpt"
    assert ExportConfig.from_sources(env=env).format == "sharegpt"
    c = ExportConfig.from_sources(env=env, format="openai", examples_per_guideline=9, output_path="out",
                                  filter=GuidelineFilter(priority_min=10))
    assert (c.format, c.examples_per_guideline, str(c.output_path), c.filter.priority_min) == ("openai", 9, "out", 10)
    # None means "not given": the environment still applies
    assert ExportConfig.from_sources(env=env, format=None).format == "sharegpt"


def test_every_problem_is_reported_at_once():
    env = {"AGENT_MEMORY_LORA_EXAMPLES_PER_GUIDELINE": "many", "MEMTUNE_EXPORT_INCLUDE_NEGATIVE": "perhaps"}
    with pytest.raises(ConfigError) as err:
        ExportConfig.from_sources(env=env, format="csv", split_ratio=0.9, split_by="file", rag_fraction=2.0,
                                  rag_copies=-1, lora_rank=0, paraphrase_url="ftp://x", filter=GuidelineFilter(tags_mode="some",
                                                                                                priority_min=120))
    problems = " | ".join(err.value.problems)
    for needle in ("EXAMPLES_PER_GUIDELINE", "INCLUDE_NEGATIVE", "format 'csv'", "split ratio", "split by",
                   "rag fraction", "rag copies", "LoRA rank", "paraphrase URL", "paraphrase model", "tags mode", "priority min",
                   "output path"):
        assert needle in problems, needle
    assert len(err.value.problems) >= 13


def test_direct_construction_validates_too():
    with pytest.raises(ConfigError) as err:
        ExportConfig(output_path="x", examples_per_guideline=51, include_negative="yes")
    assert len(err.value.problems) == 2


def test_to_dict_is_json_friendly(tmp_path):
    import json

    d = ExportConfig(output_path=tmp_path / "b", filter=GuidelineFilter(tags=["a"])).to_dict()
    assert json.loads(json.dumps(d))["filter"]["tags"] == ["a"]
