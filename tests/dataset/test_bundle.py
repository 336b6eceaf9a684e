"""The export bundle: every format loads, every tool's file is right, writes are atomic, no caps, no leaks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from memtune.dataset import FORMATS, ExportConfig, export_guidelines_as_lora, to_messages
from memtune.dataset.formats import columns
from memtune.dataset.text import question_key
from memtune.errors import ConfigError
from memtune.store import GuidelineFilter

from .conftest import add_guidelines, generated


def export(store, out: Path, **kw):
    kw.setdefault("control_fraction", 0.0)  # only the tests about "not in memory" examples want them
    result = export_guidelines_as_lora(store, ExportConfig(output_path=out, **kw))
    assert result.success, result.error
    return result


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def user_prompts(path: Path) -> set[str]:
    return {question_key(next(m["content"] for m in to_messages(r) if m["role"] == "user")) for r in read(path)}


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_loads_with_datasets(store, tmp_path, fmt):
    from datasets import load_dataset

    res = export(store, tmp_path / fmt, format=fmt)
    files = {"train": res.files["train"], "eval": res.files["eval"]}
    ds = load_dataset("json", data_files=files)
    assert ds["train"].num_rows == res.stats["examples_train"] > 0
    assert ds["eval"].num_rows == res.stats["examples_eval"] > 0
    assert sorted(ds["train"].column_names) == sorted(columns(fmt, include_metadata=True))
    for rec in read(Path(files["train"])):  # every record normalises back to a conversation
        msgs = to_messages(rec)
        assert [m["role"] for m in msgs] == ["system", "user", "assistant"]
        assert all(m["content"].strip() for m in msgs)
    probes = load_dataset("json", data_files=res.files["probes"])["train"]
    assert {"question", "expected_keywords", "context", "guideline_id"} <= set(probes.column_names)


def test_every_format_holds_the_same_conversations(store, tmp_path):
    convs = {}
    for fmt in FORMATS:
        res = export(store, tmp_path / fmt, format=fmt, rag_fraction=0.5)
        convs[fmt] = [to_messages(r) for r in read(Path(res.files["train"]))]
    assert all(c == convs["messages"] for c in convs.values())


def test_openai_format_follows_openai_rules(store, tmp_path):
    res = export(store, tmp_path / "oa", format="openai")
    for name in ("train", "eval"):
        for rec in read(Path(res.files[name])):
            assert set(rec) == {"messages"}, "no extra keys"
            roles = [m["role"] for m in rec["messages"]]
            assert set(roles) <= {"system", "user", "assistant"} and roles[-1] == "assistant"
            assert all(set(m) == {"role", "content"} and m["content"].strip() for m in rec["messages"])
    meta = read(Path(res.files["train_metadata"]))  # metadata moved to a line-aligned sidecar
    assert len(meta) == res.stats["examples_train"] and {"guideline_id", "is_negative"} <= set(meta[0])


@pytest.mark.parametrize("fmt", ["messages", "openai", "sharegpt", "alpaca", "anthropic"])
def test_llama_factory_entry_matches_the_files(store, tmp_path, fmt):
    res = export(store, tmp_path / fmt, format=fmt)
    info = json.loads(Path(res.files["llama_factory"]).read_text())
    assert set(info) == {"memtune_train", "memtune_eval"}
    for key, split in (("memtune_train", "train"), ("memtune_eval", "eval")):
        entry = info[key]
        rows = read(tmp_path / fmt / entry["file_name"])
        assert Path(res.files[split]).name == entry["file_name"]
        assert set(entry["columns"].values()) <= set(rows[0])
        if entry["formatting"] == "sharegpt":
            turns = rows[0][entry["columns"]["messages"]]
            tags = entry["tags"]
            assert {t[tags["role_tag"]] for t in turns} == {tags["system_tag"], tags["user_tag"], tags["assistant_tag"]}
            assert all(tags["content_tag"] in t for t in turns)


def test_prompt_completion_is_trl_native_and_flagged_for_llama_factory(store, tmp_path):
    res = export(store, tmp_path / "pc", format="prompt-completion")
    rec = read(Path(res.files["train"]))[0]
    assert [m["role"] for m in rec["prompt"]] == ["system", "user"] and rec["completion"][0]["role"] == "assistant"
    assert json.loads(Path(res.files["llama_factory"]).read_text()) == {}
    assert any("LLaMA-Factory" in w for w in res.warnings)


def test_anthropic_prompt_shape(store, tmp_path):
    res = export(store, tmp_path / "an", format="anthropic")
    for rec in read(Path(res.files["train"])):
        assert "\n\nHuman: " in rec["prompt"] and rec["prompt"].endswith("\n\nAssistant:")
        assert rec["completion"].startswith(" ") and rec["completion"].strip()


def test_adapter_config_loads_and_bundle_files_are_complete(store, tmp_path):
    from peft import LoraConfig

    res = export(store, tmp_path / "b")
    names = {Path(p).name for p in res.files.values()}
    assert names >= {"train.jsonl", "eval.jsonl", "probes.jsonl", "adapter_config.json", "train.py",
                     "requirements.txt", "dataset_info.yaml", "dataset_info.json", "metadata.json", "README.md"}
    cfg = LoraConfig.from_pretrained(str(tmp_path / "b"))
    assert cfg.r == 8 and cfg.lora_alpha == 16 and set(cfg.target_modules) == {"gate_proj", "up_proj", "down_proj"}
    reqs = (tmp_path / "b" / "requirements.txt").read_text()
    import importlib.metadata as md

    for pkg in ("torch", "transformers", "peft", "trl", "datasets"):
        assert f"{pkg}=={md.version(pkg)}" in reqs
    without = export(store, tmp_path / "c", generate_script=False)
    assert not {"train.py", "requirements.txt"} & {Path(p).name for p in without.files.values()}


def test_dataset_card_and_metadata(store, tmp_path):
    from datasets import load_dataset

    res = export(store, tmp_path / "b")
    card = yaml.safe_load((tmp_path / "b" / "dataset_info.yaml").read_text())
    splits = {s["name"]: s["num_examples"] for s in card["dataset_info"]["splits"]}
    assert splits == {"train": res.stats["examples_train"], "eval": res.stats["examples_eval"]}
    assert card["dataset_info"]["features"][0]["name"] == "messages"
    ds = load_dataset(str(tmp_path / "b"))  # README front matter makes the bundle a loadable HF dataset
    assert ds["train"].num_rows == res.stats["examples_train"]
    meta = json.loads((tmp_path / "b" / "metadata.json").read_text())
    assert meta["fingerprint"] == res.stats["fingerprint"].strip() and meta["fingerprint"].startswith("sha256:")
    assert meta["counts"]["examples_total"] == res.stats["examples_total"]
    assert meta["config"]["format"] == "messages"
    lineage = {(g["id"], g["version"]) for g in meta["guidelines"]}
    active = {(g.id, g.version) for g in store.iter_guidelines(GuidelineFilter())}
    assert lineage == active
    import hashlib

    h = hashlib.sha256((tmp_path / "b" / "train.jsonl").read_bytes() + (tmp_path / "b" / "eval.jsonl").read_bytes())
    assert meta["fingerprint"] == "sha256:" + h.hexdigest()
    assert set(res.stats) >= {"guidelines_matched", "examples_total", "examples_train", "examples_eval",
                              "negatives", "probes", "file_sizes", "exported_at"}
    assert any("redacted" in w for w in res.warnings)


def test_deterministic_for_a_seed(store, tmp_path):
    a = export(store, tmp_path / "a", seed=3)
    b = export(store, tmp_path / "b", seed=3)
    c = export(store, tmp_path / "c", seed=4)
    assert a.stats["fingerprint"] == b.stats["fingerprint"] != c.stats["fingerprint"]
    assert (tmp_path / "a" / "probes.jsonl").read_bytes() == (tmp_path / "b" / "probes.jsonl").read_bytes()


@pytest.mark.parametrize("split_by", ["phrasing", "guideline"])
def test_no_prompt_on_both_sides(store, tmp_path, split_by):
    add_guidelines(store, generated(30))
    res = export(store, tmp_path / split_by, split_by=split_by, split_ratio=0.3, examples_per_guideline=8)
    train, evals = user_prompts(Path(res.files["train"])), user_prompts(Path(res.files["eval"]))
    assert evals and not train & evals
    meta = json.loads((tmp_path / split_by / "metadata.json").read_text())
    train_ids = {r["metadata"]["guideline_id"] for r in read(Path(res.files["train"]))}
    eval_ids = {r["metadata"]["guideline_id"] for r in read(Path(res.files["eval"]))}
    if split_by == "guideline":
        assert not train_ids & eval_ids and res.stats["guidelines_held_out"] == len(eval_ids)
        assert {g["id"] for g in meta["guidelines"] if g["split"] == "eval"} == eval_ids
    else:  # eval = unseen phrasings of trained guidelines
        assert eval_ids <= train_ids


def test_tag_filters_any_and_all(store, tmp_path):
    def names(**flt):
        res = export(store, tmp_path / f"t{len(list(tmp_path.iterdir()))}", filter=GuidelineFilter(**flt))
        return {r["metadata"]["name"] for f in ("train", "eval") for r in read(Path(res.files[f]))}

    any_ = names(tags=["node", "security"], tags_mode="any")
    assert any_ == {"Start the backend", "Node Version", "Never commit .env files"}
    assert names(tags=["node", "backend"], tags_mode="all") == {"Start the backend", "Node Version"}
    assert names(category="security") == {"Never commit .env files"}
    assert "Old deploy script" in names(active_only=False)
    assert "Old deploy script" not in any_
    assert names(scope_type="org", scope_id="acme") == {"Shared CI cache"}


def test_more_than_twenty_guidelines_all_exported(store, tmp_path):
    add_guidelines(store, generated(40))
    total = store.count(GuidelineFilter())
    res = export(store, tmp_path / "big", examples_per_guideline=2)
    assert total > 20 and res.stats["guidelines_matched"] == res.stats["guidelines_exported"] == total
    ids = {r["metadata"]["guideline_id"] for f in ("train", "eval") for r in read(Path(res.files[f]))}
    assert len(ids) == total


def test_parallel_rendering_writes_the_same_bytes(store, tmp_path, monkeypatch):
    import memtune.dataset.bundle as bundle

    add_guidelines(store, generated(60))
    monkeypatch.setattr(bundle, "PARALLEL_MIN", 10)  # big-store mode: workers + recent-notes distractors
    monkeypatch.setattr(bundle, "SEARCH_DISTRACTORS_MAX", 10)
    monkeypatch.setattr(bundle, "_BATCH", 7)
    runs = {}
    for workers in ("1", "2"):
        monkeypatch.setenv("MEMTUNE_EXPORT_WORKERS", workers)
        runs[workers] = export(store, tmp_path / workers, split_by="guideline", format="openai")
        assert runs[workers].stats["workers"] == int(workers)
    assert runs["1"].stats["rag_examples"] > 0
    for name in ("train.jsonl", "eval.jsonl", "probes.jsonl", "train.metadata.jsonl"):
        assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes()


def test_non_empty_target_needs_force(store, tmp_path):
    out = tmp_path / "b"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not empty"):
        export_guidelines_as_lora(store, ExportConfig(output_path=out))
    assert (out / "keep.txt").read_text() == "mine"
    res = export(store, out, force=True)
    assert not (out / "keep.txt").exists() and Path(res.files["train"]).is_file()
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="not a directory"):
        export_guidelines_as_lora(store, ExportConfig(output_path=tmp_path / "file", force=True))


def test_failed_export_leaves_no_half_bundle(store, tmp_path, monkeypatch):
    import memtune.dataset.bundle as bundle

    def boom(*a, **k):
        raise RuntimeError("disk full")

    out = tmp_path / "b"
    monkeypatch.setattr(bundle.artifacts, "dataset_card", boom)  # fails after train/eval were written
    with pytest.raises(RuntimeError):
        export_guidelines_as_lora(store, ExportConfig(output_path=out))
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".b.")], "temp dir cleaned up"
    monkeypatch.undo()
    first = export(store, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    monkeypatch.setattr(bundle.artifacts, "dataset_card", boom)
    with pytest.raises(RuntimeError):
        export_guidelines_as_lora(store, ExportConfig(output_path=out, force=True, seed=9))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before, "old bundle untouched"
    assert first.success


def test_stale_temp_dirs_of_killed_exports_are_removed(store, tmp_path):
    stale = tmp_path / ".b.tmp-999999999-deadbeef"
    stale.mkdir()
    (stale / "train.jsonl").write_text("half")
    export(store, tmp_path / "b")
    assert not stale.exists()


def test_no_match_is_an_error_result(store, tmp_path):
    res = export_guidelines_as_lora(store, ExportConfig(output_path=tmp_path / "b",
                                                        filter=GuidelineFilter(tags=["nope"])))
    assert not res.success and "no guidelines" in res.error and not (tmp_path / "b").exists()


def test_without_metadata_records_are_bare(store, tmp_path):
    res = export(store, tmp_path / "b", format="sharegpt", include_metadata=False)
    assert set(read(Path(res.files["train"]))[0]) == {"conversations"}
    assert "train_metadata" not in res.files


def test_readme_explains_every_tool(store, tmp_path):
    export(store, tmp_path / "b", format="openai")
    readme = (tmp_path / "b" / "README.md").read_text()
    assert readme.startswith("---\n")
    for needle in ("memtune train", "python train.py", "TRL", "LLaMA-Factory", "Axolotl", "fine_tuning.jobs.create"):
        assert needle in readme, needle


def test_to_messages_reads_foreign_spellings():
    assert to_messages({"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}) == [
        {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    assert to_messages({"instruction": "q", "input": "", "output": "a"})[-1] == {"role": "assistant", "content": "a"}
    assert to_messages({"instruction": "q", "input": "c", "output": "a"})[0]["content"] == "q\n\nContext: c"
    assert to_messages({"prompt": "S\n\nHuman: q\n\nAssistant:", "completion": " a"}) == [
        {"role": "system", "content": "S"}, {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    assert to_messages({"prompt": "q", "completion": "a"})[0]["role"] == "user"
    with pytest.raises(ValueError):
        to_messages({"text": "x"})


def test_training_prompts_equal_to_a_held_out_one_are_dropped_and_the_digest_covers_what_stays(tmp_path):
    import hashlib

    from memtune.dataset.bundle import _BundleWriter

    w = _BundleWriter(None, ExportConfig(output_path=tmp_path / "out"), tmp_path, 2, None)
    (tmp_path / "train.part").write_text('aa\t{"q": 1}\nbb\t{"q": 2}\ncc\t{"q": 3}\n', encoding="utf-8")
    if w.sidecar:
        (tmp_path / "train.metadata.part").write_text("aa\t{}\nbb\t{}\ncc\t{}\n", encoding="utf-8")
    w.c["train"] = 3
    digest = w._filter_train({"bb"})
    kept = (tmp_path / "train.jsonl").read_bytes()
    assert kept == b'{"q": 1}\n{"q": 3}\n' and w.c["dropped_overlap"] == 1 and w.c["train"] == 2
    assert digest.hexdigest() == hashlib.sha256(kept).hexdigest()
