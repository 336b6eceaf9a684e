"""Helpers both renderers share: number formats, colours, training-curve parsing."""

from __future__ import annotations

from typing import Any

from memtune.evaluate.results import CONDITION_LABELS

CONDITION_COLORS = {"base": "#9aa0a6", "base+rag": "#f29900", "adapter": "#1a73e8", "adapter+rag": "#0f9d58"}
HEADLINE_LABELS = {
    "adapter_recall": "Adapter recall (held-out phrasings)",
    "base_recall": "Base model recall",
    "adapter_rag_recall": "Adapter + retrieval recall",
    "control_invented_rate": "Controls: invented answers (adapter)",
    "general_loss_change_pct": "General-text loss change",
}


def label(condition: str) -> str:
    return CONDITION_LABELS.get(condition, condition)


def color(condition: str) -> str:
    return CONDITION_COLORS.get(condition, "#5f6368")


def pct(v: float | None, digits: int = 0) -> str:
    return "–" if v is None else f"{v * 100:.{digits}f}%"


def num(v: float | None, digits: int = 3) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def headline_value(key: str, v: float | None) -> str:
    if v is None:
        return "not measured"
    if key == "general_loss_change_pct":
        return f"{v:+.1f}%"
    return pct(v)


def target_text(key: str, op: str, target: float) -> str:
    t = f"{target:.0f}%" if key == "general_loss_change_pct" else f"{target * 100:.0f}%"
    return f"{'≥' if op == '>=' else '≤'} {t}"


def parse_curves(curves: dict[str, Any] | None) -> dict[str, list[tuple[float, float]]]:
    """``memtune train``'s curves.json → named (step, value) series; empty where absent.

    Layout: ``{"train": [{"step", "loss", ...}], "epochs": [{"step", "epoch",
    "eval_loss", "probe_recall", ...}]}``. Bare lists of numbers are accepted too.
    """
    out: dict[str, list[tuple[float, float]]] = {"train_loss": [], "eval_loss": [], "probe_recall": []}
    if not isinstance(curves, dict):
        return out

    def num_or_none(v: Any) -> float | None:
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    for i, row in enumerate(curves.get("train") or [], 1):
        if isinstance(row, dict):
            x, y = num_or_none(row.get("step", i)), num_or_none(row.get("loss"))
        else:
            x, y = float(i), num_or_none(row)
        if x is not None and y is not None:
            out["train_loss"].append((x, y))
    for i, row in enumerate(curves.get("epochs") or curves.get("eval") or [], 1):
        if not isinstance(row, dict):
            continue
        x = num_or_none(row.get("step")) or num_or_none(row.get("epoch")) or float(i)
        for key in ("eval_loss", "probe_recall"):
            y = num_or_none(row.get(key))
            if y is not None:
                out[key].append((x, y))
    return out


def one_line(text: str, limit: int = 160) -> str:
    t = " ".join((text or "").split())
    return t if len(t) <= limit else t[: limit - 1] + "…"
