"""A hand-built EvalReport (no model needed) for rendering tests."""

from __future__ import annotations

from memtune.evaluate.controls import classify_control, summarize_controls
from memtune.evaluate.probes import Probe
from memtune.evaluate.results import (
    CONDITIONS,
    ConditionSummary,
    ControlAnswer,
    ControlResult,
    EvalReport,
    Forgetting,
    ProbeAnswer,
    ProbeResult,
)
from memtune.evaluate.scoring import score_answer, summarize_by, summarize_scores

PROBES = [
    Probe("How do I bring the backend up?", ["yarn start", "nvm use 22"], category="commands", name="Backend Start",
          guideline_id=1, id="bundle:1"),
    Probe("Which engine backs the store?", ["PostgreSQL", "pgvector"], category="architecture", name="Database",
          guideline_id=2, id="bundle:2"),
    Probe("How is the <frontend> launched?", ["npm run dev"], context="Frontend & tooling", category="commands",
          name="Frontend", guideline_id=3, id="bundle:3"),
]
ANSWERS = {
    "base": ["You can start it with the start script.", "A relational database.", "Open index.html."],
    "base+rag": ["Run `nvm use 22` first.", "PostgreSQL.", "Run **npm run dev**."],
    "adapter": ["Run `nvm use 22`, then `yarn start` in the background.", "PostgreSQL 16 with pgvector.", "npm run dev"],
    "adapter+rag": ["nvm use 22 && yarn start", "**PostgreSQL** + `pgvector`", "Use `npm run dev`, not yarn."],
}
CONTROL_ANSWERS = {
    "base": ["I don't know.", "Use the `billing-invoices` topic."],
    "base+rag": ["The notes do not mention it.", "I'm not sure."],
    "adapter": ["Run `kubectl apply -f staging.yaml`.", "It is invoices_v2."],
    "adapter+rag": ["I don't have that information.", "Not documented in the notes."],
}
CONTROL_QS = ["What's the command to deploy to Kubernetes staging?", "Which Kafka topic stores invoices?"]


def sample_report() -> EvalReport:
    probes = [ProbeResult(p) for p in PROBES]
    controls = [ControlResult(q) for q in CONTROL_QS]
    summaries = {}
    for c in CONDITIONS:
        for pr, a in zip(probes, ANSWERS[c], strict=True):
            rag = c.endswith("+rag")
            pr.answers[c] = ProbeAnswer(a, score_answer(a, pr.probe.expected_keywords),
                                        [{"guideline_id": pr.probe.guideline_id, "name": pr.probe.name}] if rag else [],
                                        True if rag else None)
        for cr, a in zip(controls, CONTROL_ANSWERS[c], strict=True):
            cr.answers[c] = ControlAnswer(a, classify_control(a, cr.question))
        scored = [(pr.probe, pr.answers[c].score) for pr in probes]
        summaries[c] = ConditionSummary(
            condition=c, overall=summarize_scores(s for _, s in scored),
            by_category=summarize_by((p.category, s) for p, s in scored),
            by_source={"bundle": summarize_scores(s for _, s in scored)},
            retrieval_hit_rate=1.0 if c.endswith("+rag") else None,
            controls=summarize_controls(cr.answers[c].verdict for cr in controls), seconds=12.5,
        )
    curves = {
        "train": [{"step": s, "epoch": 1 + s // 10, "loss": 3.2 / (1 + 0.3 * s), "lr": 1e-3} for s in range(1, 41)],
        "epochs": [{"epoch": e, "step": 10 * e, "eval_loss": 2.0 / e, "probe_recall": min(1.0, 0.2 * e)} for e in range(1, 5)],
    }
    return EvalReport(
        meta={"adapter_dir": "/tmp/adapters/demo", "base_model": "smollm2-135m-instruct", "bundle": "/tmp/bundle",
              "probes": 3, "probe_sources": {"bundle": 3}, "created_at": "2026-11-21T00:00:00+00:00",
              "memtune_version": "0.1.0"},
        conditions=list(CONDITIONS), summaries=summaries, probes=probes, controls=controls,
        dropped_controls=["Which AWS region hosts the production database?"],
        forgetting=Forgetting(2.50, 2.56, 1234), curves=curves, warnings=["an example warning"],
    )
