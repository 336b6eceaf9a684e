"""``report.md``: the same findings as the HTML, for a terminal, a PR comment or git diff."""

from __future__ import annotations

from memtune.evaluate.report.common import HEADLINE_LABELS, headline_value, label, num, one_line, pct, target_text
from memtune.evaluate.results import EvalReport


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows]
    return out


def render_markdown(r: EvalReport) -> str:
    m = r.meta
    lines = ["# memtune evaluation", ""]
    lines += [f"- adapter: `{m.get('adapter_dir')}`", f"- base model: {m.get('base_model') or 'unknown'}",
              f"- bundle: `{m.get('bundle')}`" if m.get("bundle") else "- bundle: none",
              f"- probes: {m.get('probes')} ({', '.join(f'{k}: {v}' for k, v in (m.get('probe_sources') or {}).items())}), "
              f"controls: {len(r.controls)}, created {m.get('created_at')}", ""]

    lines += ["## Headline", ""]
    rows = []
    for key, chk in r.target_checks().items():
        mark = "–" if chk["met"] is None else ("✅" if chk["met"] else "❌")
        rows.append([HEADLINE_LABELS[key], headline_value(key, chk["value"]), target_text(key, chk["op"], chk["target"]), mark])
    rows.append(["Secret leaks in answers", str(r.leak_count), "0", "✅" if r.leak_count == 0 else "❌"])
    lines += _table(["figure", "value", "target", "met"], rows) + [""]

    lines += ["## Conditions", ""]
    rows = []
    for c in r.conditions:
        s = r.summaries[c]
        ctrl = s.controls
        rows.append([label(c), pct(s.overall.recall, 1), pct(s.overall.full_rate, 1), str(s.overall.n),
                     pct(s.retrieval_hit_rate), pct(ctrl.invented_rate if ctrl else None), str(s.leaks), f"{s.seconds:.0f}s"])
    lines += _table(["condition", "keyword recall", "full recall", "probes", "right note retrieved",
                     "controls invented", "leaks", "time"], rows) + [""]

    cats = sorted({k for s in r.summaries.values() for k in s.by_category})
    if cats:
        lines += ["## Recall per category", ""]
        rows = []
        for cat in cats:
            n = next((s.by_category[cat].n for s in r.summaries.values() if cat in s.by_category), 0)
            rows.append([cat, str(n)] + [pct(r.summaries[c].by_category.get(cat).recall if cat in r.summaries[c].by_category else None)
                                         for c in r.conditions])
        lines += _table(["category", "probes"] + [label(c) for c in r.conditions], rows) + [""]

    if r.forgetting:
        f = r.forgetting
        lines += ["## Forgetting", "",
                  f"Mean token loss on `{f.sample}` ({f.tokens} tokens): base {num(f.base_loss)}, "
                  f"adapter {num(f.adapter_loss)} → **{f.change_pct:+.2f}%**.", ""]

    if r.controls:
        lines += ["## Control questions (not in the memory)", ""]
        rows = []
        for cr in r.controls:
            rows.append([cr.question] + [f"{cr.answers[c].verdict.label}: {one_line(cr.answers[c].answer, 100)}" for c in r.conditions])
        lines += _table(["question"] + [label(c) for c in r.conditions], rows) + [""]
        if r.dropped_controls:
            lines += [f"Dropped because the memory mentions their topic: {len(r.dropped_controls)}.", ""]

    lines += ["## Probes", ""]
    rows = []
    for i, pr in enumerate(r.probes, 1):
        cells = [str(i), pr.probe.category, pr.probe.question, ", ".join(pr.probe.expected_keywords)]
        for c in r.conditions:
            a = pr.answers[c]
            missed = f" (missed: {', '.join(a.score.missed)})" if a.score.missed else ""
            cells.append(f"{pct(a.score.recall)}{missed} — {one_line(a.answer, 140)}")
        rows.append(cells)
    lines += _table(["#", "category", "question", "keywords"] + [label(c) for c in r.conditions], rows) + [""]

    if r.warnings:
        lines += ["## Warnings", ""] + [f"- {w}" for w in r.warnings] + [""]
    return "\n".join(lines)
