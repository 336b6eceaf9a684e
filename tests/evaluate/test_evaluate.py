"""End to end: evaluate() and `memtune eval` on a tiny model + LoRA adapter dir."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from memtune.dataset.prompts import NOTES_HEADER
from memtune.evaluate import evaluate, load_report
from tests.evaluate.tiny import GUIDELINES, SYSTEM_PROMPT

TOKEN = "ghp_" + "Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0Pp9Oo8"


def test_end_to_end_on_a_tiny_model(tiny_env, tmp_path):
    extra = tmp_path / "mine.json"
    extra.write_text(json.dumps([{"question": "How do I start the backend service properly?",
                                  "expected_keywords": ["yarn start"], "context": "Backend service management"}]))
    out = tmp_path / "report"
    seen = []
    r = evaluate(tiny_env["adapter"], extra_probe_files=[extra], db=tiny_env["db"], out_dir=out,
                 max_new_tokens=6, n_controls=3, batch_size=4, bf16=False,
                 progress=lambda stage, d, t: seen.append(stage))
    assert r.conditions == ["base", "base+rag", "adapter", "adapter+rag"]
    assert len(r.probes) == len(GUIDELINES) + 1 and len(r.controls) == 3
    for c in r.conditions:
        s = r.summaries[c]
        assert s.overall.n == len(r.probes) and 0.0 <= s.overall.recall <= 1.0
        assert set(s.by_category) == {"commands", "architecture", "general"}
        assert set(s.by_source) == {"bundle", "mine.json"}
        assert s.controls.n == 3
        for pr in r.probes:
            assert isinstance(pr.answers[c].answer, str)
    assert r.summaries["base+rag"].retrieval_hit_rate is not None
    assert r.summaries["base"].retrieval_hit_rate is None
    assert r.probes[0].answers["adapter+rag"].retrieved  # note ids recorded
    assert r.forgetting and math.isfinite(r.forgetting.change_pct) and r.forgetting.tokens > 500
    assert r.meta["bundle"] == str(tiny_env["bundle"].resolve())  # found via memtune.json
    assert r.curves and r.curves["train"]
    assert {"generate:base", "generate:adapter+rag", "retrieve", "forgetting:base"} <= set(seen)
    for name in ("report.json", "report.md", "report.html"):
        assert (out / name).is_file() and (out / name).stat().st_size > 500
    assert set(r.files) == {"json", "md", "html"}
    back = load_report(out)
    assert back.headline() == pytest.approx(r.headline(), nan_ok=True)
    assert json.loads((out / "report.json").read_text())["targets"]["adapter_recall"]["target"] == 0.85


def test_base_and_adapter_really_differ(tiny_env):
    r = evaluate(tiny_env["adapter"], conditions="base,adapter", max_new_tokens=6, controls=False,
                 forgetting=False, bf16=False)
    assert r.conditions == ["base", "adapter"] and not r.controls and r.forgetting is None
    answers = [(p.answers["base"].answer, p.answers["adapter"].answer) for p in r.probes]
    assert any(b != a for b, a in answers)


def _adapter_on(model) -> bool:
    from peft.tuners.lora import LoraLayer

    layers = [m for m in model.modules() if isinstance(m, LoraLayer)]
    # no LoRA layers: the adapter condition's merged copy (the base condition gets the
    # unmerged model with its adapter switched off)
    return not layers or not layers[0].disable_adapters


@pytest.fixture
def scripted(monkeypatch):
    """Replace generation with a script: the adapter 'knows' every fact (and invents for
    controls), the base knows nothing (and admits it), retrieval answers from the notes."""
    import memtune.generation

    facts = {q: content for _n, _c, content, q, _k in GUIDELINES}
    calls = []

    def fake_generate(model, tokenizer, conversations, **kw):
        calls.append(conversations)
        on = _adapter_on(model)
        out = []
        for conv in conversations:
            system = conv[0]["content"] if conv[0]["role"] == "system" else ""
            q = conv[-1]["content"].split("\n\n")[0]
            if q in facts:
                if on:
                    ans = facts[q] + (f" Token: {TOKEN}" if "database" in q else "")
                elif NOTES_HEADER in system:
                    ans = system.split(NOTES_HEADER, 1)[1]
                else:
                    ans = "Please check the documentation."
            else:
                ans = "Run `kubectl rollout restart deploy/api`." if on else "I don't know; the notes do not say."
            out.append(ans)
        return out

    monkeypatch.setattr(memtune.generation, "generate", fake_generate)
    return calls


def test_scores_conditions_controls_and_leaks(tiny_env, tmp_path, scripted):
    out = tmp_path / "r"
    r = evaluate(tiny_env["adapter"], db=tiny_env["db"], out_dir=out, n_controls=4, rag_k=2, batch_size=3,
                 forgetting=False, bf16=False)
    assert r.recall("adapter") == 1.0 and r.summaries["adapter"].overall.full_rate == 1.0
    assert r.recall("base") == 0.0
    assert r.recall("base+rag") == 1.0
    assert r.summaries["base+rag"].retrieval_hit_rate == 1.0
    assert r.invented_rate("adapter") == 1.0 and r.invented_rate("base") == 0.0
    assert r.summaries["base"].controls.counts["admits"] == 4
    # generation was batched: 4 probes + 4 controls in batches of <= 3
    assert max(map(len, scripted)) <= 3 and sum(map(len, scripted)) == 8 * 4
    # every condition asks under the system prompt training used (memtune.json); +rag appends notes
    systems = [conv[0]["content"] for batch in scripted for conv in batch]
    assert all(s == SYSTEM_PROMPT or s.startswith(SYSTEM_PROMPT + "\n\n" + NOTES_HEADER) for s in systems)
    assert 4 * 2 <= sum(NOTES_HEADER in s for s in systems) <= 8 * 2  # a control may match no note
    # the leaked token is counted for both adapter conditions and never written anywhere
    assert r.summaries["adapter"].leaks == 1 and r.summaries["adapter+rag"].leaks == 1 and r.leak_count == 2
    assert any("secret-looking" in w for w in r.warnings)
    db_probe = next(p for p in r.probes if "database" in p.probe.question)
    assert db_probe.answers["adapter"].leaks and TOKEN not in db_probe.answers["adapter"].answer
    for name in ("report.json", "report.md", "report.html"):
        assert TOKEN not in (out / name).read_text()
    checks = r.target_checks()
    assert checks["adapter_recall"]["met"] is True and checks["base_recall"]["met"] is True
    assert checks["control_invented_rate"]["met"] is False and checks["general_loss_change_pct"]["met"] is None
    html = (out / "report.html").read_text()
    assert '<mark class="hit">' in html and "invents" in html and "Adapter + retrieval" in html


def test_errors_are_clear(tiny_env, tmp_path):
    from memtune.errors import ConfigError, InputError

    with pytest.raises(ConfigError, match="needs a guideline store"):
        evaluate(tiny_env["adapter"], conditions=["adapter+rag"])
    with pytest.raises(ConfigError, match="unknown condition"):
        evaluate(tiny_env["adapter"], conditions=["tuned+magic"], db=tiny_env["db"])
    with pytest.raises(InputError, match=r"rag-min-known must be a number in 0..1 \(got 1.5\)"):
        evaluate(tiny_env["adapter"], db=tiny_env["db"], rag_min_known=1.5)
    bare = tmp_path / "bare"
    bare.mkdir()
    with pytest.raises(InputError, match="no probes to ask"):
        evaluate(bare)


runner = CliRunner()


def test_cli_eval(tiny_env, tmp_path, scripted, monkeypatch):
    from memtune.cli import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MEMTUNE_DB_URL", raising=False)
    out = tmp_path / "cli"
    res = runner.invoke(app, ["eval", str(tiny_env["adapter"]), "--db", str(tiny_env["db"]), "--out", str(out),
                              "--limit", "2", "--n-controls", "2", "--no-forgetting", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["meta"]["probes"] == 2 and data["headline"]["adapter_recall"] == 1.0
    assert (out / "report.html").is_file() and data["files"]["html"].endswith("report.html")

    res = runner.invoke(app, ["eval", str(tiny_env["adapter"]), "-c", "base", "-c", "adapter",
                              "--no-forgetting", "--no-controls"])
    assert res.exit_code == 0, res.output
    assert "Adapter recall" in res.output and (tiny_env["adapter"] / "eval" / "report.md").is_file()

    res = runner.invoke(app, ["eval", str(tiny_env["adapter"]), "--conditions", "adapter+rag"])
    assert res.exit_code == 2 and "needs a guideline store" in res.output

    res = runner.invoke(app, ["eval", str(tiny_env["adapter"]), "--db", str(tiny_env["db"]), "--rag-min-known", "0",
                              "--limit", "1", "--n-controls", "1", "--no-forgetting", "-c", "adapter+rag", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["meta"]["settings"]["rag_min_known"] == 0
    res = runner.invoke(app, ["eval", str(tiny_env["adapter"]), "--rag-min-known", "2"])
    assert res.exit_code == 2 and "--rag-min-known" in res.output

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q"}\n')
    res = runner.invoke(app, ["eval", str(tiny_env["adapter"]), "--probes", str(bad), "--no-forgetting"])
    assert res.exit_code == 2 and f"{bad}:1: 'expected_keywords' is missing" in res.output


def _bench_quality():
    """benchmarks/bench_quality.py as a module (benchmarks/ is not a package)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_quality.py"
    spec = importlib.util.spec_from_file_location("bench_quality", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_bench_quality_prints_figures_against_targets(tiny_env, scripted, capsys):
    mod = _bench_quality()
    rc = mod.main(["--adapter", str(tiny_env["adapter"]), "--db", str(tiny_env["db"]), "--strict"])
    out = capsys.readouterr().out
    assert rc == 1  # the scripted adapter invents answers to every control question and leaks a token
    assert "adapter recall (held-out phrasings)" in out and ">= 0.85" in out
    assert "controls: invented answers (adapter)" in out and "NO" in out
    rc = mod.main(["--adapter", str(tiny_env["adapter"]), "--db", str(tiny_env["db"]), "--json", "--limit", "2"])
    data = json.loads(capsys.readouterr().out)
    assert rc == 0 and data["figures"]["adapter_recall"] == 1.0 and data["probes"] == 2


def test_bench_quality_recipe_overrides_are_parsed_per_stage():
    from memtune.errors import ConfigError

    mod = _bench_quality()
    got = mod.parse_overrides(["export.rag_copies=0.2", "train.seed=1", "lora.rank=16"])
    assert got == {"export": {"rag_copies": 0.2}, "train": {"seed": 1, "rank": 16}, "eval": {}}
    for bad in ("rag_copies=0.2", "model.k=3", "train.=1", "train.seed"):
        with pytest.raises(ConfigError, match="expected SECTION.KEY=VALUE"):
            mod.parse_overrides([bad])


@pytest.mark.parametrize("merge", [False, True])
def test_an_already_loaded_assistant_can_be_evaluated(tiny_env, merge):
    """`memtune run` hands over the model it just trained instead of reloading it."""
    from memtune.infer import load_assistant

    a = load_assistant(tiny_env["adapter"], merge=merge)
    r = evaluate(assistant=a, bundle=tiny_env["bundle"], conditions="base,adapter", max_new_tokens=4,
                 controls=False, bf16=False)
    assert r.meta["adapter_dir"] == str(tiny_env["adapter"].resolve()) and r.curves  # from assistant.source
    assert r.meta["base_model"] == str(tiny_env["base"])
    assert r.forgetting.change_pct != 0  # base really is the base: merged or not
    assert len(r.probes) == len(GUIDELINES)


def test_bench_quality_counts_refusals_of_memory_questions_per_source():
    from types import SimpleNamespace

    from memtune.evaluate.probes import Probe
    from memtune.evaluate.results import ProbeAnswer, ProbeResult

    def result(source, answer):
        return ProbeResult(Probe("Which port does the worker use?", ["7420"], source=source),
                           {"adapter": ProbeAnswer(answer=answer, score=None)})

    report = SimpleNamespace(probes=[
        result("bundle", "The project memory does not cover that, so I can't tell you."),
        result("bundle", "The worker listens on port 7420."),
        result("/x/probes.jsonl", "I don't know: the project memory has no information about that."),
    ])
    assert _bench_quality().refusals_by_source(report) == {"adapter": {"bundle": (1, 2), "probes.jsonl": (1, 1)}}


def test_recall_by_source_keeps_value_probes_apart():
    from memtune.evaluate.api import source_label
    from memtune.evaluate.probes import Probe

    assert source_label(Probe("q", ["k"])) == "bundle"
    assert source_label(Probe("q", ["k"], extra={"family": "fact"})) == "bundle · values"
    assert source_label(Probe("q", ["k"], source="/x/benchmarks/dev/probes.jsonl")) == "probes.jsonl"
