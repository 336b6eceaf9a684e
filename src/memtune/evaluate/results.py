"""The data an evaluation produces: plain dataclasses that serialise to ``report.json``.

Renderers (``report/``) read only these, so a report can be re-rendered from its JSON
without a model (``EvalReport.from_dict``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from memtune.evaluate.controls import ControlSummary, ControlVerdict
from memtune.evaluate.probes import Probe
from memtune.evaluate.scoring import KeywordScore, RecallSummary

CONDITIONS = ("base", "base+rag", "adapter", "adapter+rag")
CONDITION_LABELS = {
    "base": "Base model",
    "base+rag": "Base + retrieval",
    "adapter": "Adapter",
    "adapter+rag": "Adapter + retrieval",
}
#: the quality targets (docs/benchmarks.md); ``benchmarks/bench_quality.py`` prints figures against them.
TARGETS = {
    "adapter_recall": (">=", 0.85),
    "base_recall": ("<=", 0.30),
    "adapter_rag_recall": (">=", 0.95),
    "control_invented_rate": ("<=", 0.20),
    "general_loss_change_pct": ("<=", 5.0),
}


@dataclass
class ProbeAnswer:
    """One condition's answer to one probe (secrets already redacted from ``answer``)."""

    answer: str
    score: KeywordScore
    retrieved: list[dict[str, Any]] = field(default_factory=list)
    retrieval_hit: bool | None = None
    """Whether the probe's own guideline was among the retrieved notes (rag conditions)."""
    leaks: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"answer": self.answer, **self.score.to_dict(), "retrieved": self.retrieved,
                "retrieval_hit": self.retrieval_hit, "leaks": self.leaks}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProbeAnswer:
        return cls(answer=d["answer"], score=KeywordScore(list(d.get("hits", [])), list(d.get("missed", []))),
                   retrieved=d.get("retrieved", []), retrieval_hit=d.get("retrieval_hit"), leaks=d.get("leaks", []))


@dataclass
class ProbeResult:
    probe: Probe
    answers: dict[str, ProbeAnswer] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**self.probe.to_dict(), "answers": {c: a.to_dict() for c, a in self.answers.items()}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProbeResult:
        fields = {k: v for k, v in d.items() if k != "answers"}
        return cls(Probe(**fields), {c: ProbeAnswer.from_dict(a) for c, a in d.get("answers", {}).items()})


@dataclass
class ControlAnswer:
    answer: str
    verdict: ControlVerdict
    retrieved: list[dict[str, Any]] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"answer": self.answer, **self.verdict.to_dict(), "retrieved": self.retrieved, "leaks": self.leaks}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ControlAnswer:
        v = ControlVerdict(d["label"], d.get("admission"), tuple(d.get("specifics", ())))
        return cls(answer=d["answer"], verdict=v, retrieved=d.get("retrieved", []), leaks=d.get("leaks", []))


@dataclass
class ControlResult:
    question: str
    answers: dict[str, ControlAnswer] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"question": self.question, "answers": {c: a.to_dict() for c, a in self.answers.items()}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ControlResult:
        return cls(d["question"], {c: ControlAnswer.from_dict(a) for c, a in d.get("answers", {}).items()})


def _rs(d: dict[str, Any]) -> RecallSummary:
    return RecallSummary(n=d.get("n", 0), recall=d.get("recall"), full_rate=d.get("full_rate"), unscored=d.get("unscored", 0))


@dataclass
class ConditionSummary:
    """Everything one condition scored: overall, per category, per probe source."""

    condition: str
    overall: RecallSummary
    by_category: dict[str, RecallSummary] = field(default_factory=dict)
    by_source: dict[str, RecallSummary] = field(default_factory=dict)
    retrieval_hit_rate: float | None = None
    controls: ControlSummary | None = None
    leaks: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "condition": self.condition, "label": CONDITION_LABELS.get(self.condition, self.condition),
            **self.overall.to_dict(),
            "by_category": {k: v.to_dict() for k, v in self.by_category.items()},
            "by_source": {k: v.to_dict() for k, v in self.by_source.items()},
            "retrieval_hit_rate": self.retrieval_hit_rate,
            "controls": self.controls.to_dict() if self.controls else None,
            "leaks": self.leaks, "seconds": round(self.seconds, 2),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ConditionSummary:
        c = d.get("controls")
        return cls(
            condition=d["condition"], overall=_rs(d),
            by_category={k: _rs(v) for k, v in d.get("by_category", {}).items()},
            by_source={k: _rs(v) for k, v in d.get("by_source", {}).items()},
            retrieval_hit_rate=d.get("retrieval_hit_rate"),
            controls=ControlSummary(n=c["n"], counts=c["counts"]) if c else None,
            leaks=d.get("leaks", 0), seconds=d.get("seconds", 0.0),
        )


@dataclass
class Forgetting:
    """Mean token loss on the shipped general-English sample, before and after training."""

    base_loss: float
    adapter_loss: float
    tokens: int
    sample: str = "general_text.txt"

    @property
    def change_pct(self) -> float:
        return (self.adapter_loss - self.base_loss) / self.base_loss * 100.0

    def to_dict(self) -> dict[str, Any]:
        return {"base_loss": self.base_loss, "adapter_loss": self.adapter_loss,
                "change_pct": self.change_pct, "tokens": self.tokens, "sample": self.sample}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Forgetting:
        return cls(d["base_loss"], d["adapter_loss"], d["tokens"], d.get("sample", "general_text.txt"))


@dataclass
class EvalReport:
    """What ``evaluate`` returns and ``report.json`` holds."""

    meta: dict[str, Any]
    conditions: list[str]
    summaries: dict[str, ConditionSummary]
    probes: list[ProbeResult]
    controls: list[ControlResult] = field(default_factory=list)
    dropped_controls: list[str] = field(default_factory=list)
    forgetting: Forgetting | None = None
    curves: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)

    def recall(self, condition: str) -> float | None:
        s = self.summaries.get(condition)
        return s.overall.recall if s else None

    def invented_rate(self, condition: str) -> float | None:
        s = self.summaries.get(condition)
        return s.controls.invented_rate if s and s.controls else None

    @property
    def leak_count(self) -> int:
        return sum(s.leaks for s in self.summaries.values())

    def headline(self) -> dict[str, float | None]:
        """The figures the targets are set for (None where a condition or check was not run)."""
        return {
            "adapter_recall": self.recall("adapter"),
            "base_recall": self.recall("base"),
            "adapter_rag_recall": self.recall("adapter+rag"),
            "base_rag_recall": self.recall("base+rag"),
            "control_invented_rate": self.invented_rate("adapter"),
            "general_loss_change_pct": self.forgetting.change_pct if self.forgetting else None,
            "leaks": float(self.leak_count),
        }

    def target_checks(self) -> dict[str, dict[str, Any]]:
        """Each headline figure next to its issue-5 target and whether it is met."""
        h = self.headline()
        out: dict[str, dict[str, Any]] = {}
        for key, (op, target) in TARGETS.items():
            v = h.get(key)
            ok = None if v is None else (v >= target if op == ">=" else v <= target)
            out[key] = {"value": v, "op": op, "target": target, "met": ok}
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "meta": self.meta,
            "conditions": self.conditions,
            "headline": self.headline(),
            "targets": self.target_checks(),
            "summaries": {c: s.to_dict() for c, s in self.summaries.items()},
            "forgetting": self.forgetting.to_dict() if self.forgetting else None,
            "probes": [p.to_dict() for p in self.probes],
            "controls": [c.to_dict() for c in self.controls],
            "dropped_controls": self.dropped_controls,
            "curves": self.curves,
            "warnings": self.warnings,
            "files": self.files,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EvalReport:
        return cls(
            meta=d.get("meta", {}), conditions=list(d.get("conditions", [])),
            summaries={c: ConditionSummary.from_dict(s) for c, s in d.get("summaries", {}).items()},
            probes=[ProbeResult.from_dict(p) for p in d.get("probes", [])],
            controls=[ControlResult.from_dict(c) for c in d.get("controls", [])],
            dropped_controls=list(d.get("dropped_controls", [])),
            forgetting=Forgetting.from_dict(d["forgetting"]) if d.get("forgetting") else None,
            curves=d.get("curves"), warnings=list(d.get("warnings", [])), files=dict(d.get("files", {})),
        )
