"""``report.html``: one self-contained page (inline CSS and SVG; no scripts, fonts or links
to fetch), so it opens offline, in CI artifacts and in mail attachments alike."""

from __future__ import annotations

from html import escape

from memtune.evaluate.report.common import (
    HEADLINE_LABELS,
    color,
    headline_value,
    label,
    num,
    parse_curves,
    pct,
    target_text,
)
from memtune.evaluate.report.svg import bar_chart, line_chart
from memtune.evaluate.results import EvalReport
from memtune.evaluate.scoring import keyword_spans

CSS = """
*{box-sizing:border-box}
body{margin:0;padding:24px 32px;font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#202124;background:#f8f9fa}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 12px;border-bottom:1px solid #dadce0;padding-bottom:4px}
.meta{color:#5f6368;font-size:13px}.meta code{font-size:12px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.card{background:#fff;border:1px solid #dadce0;border-left:6px solid #9aa0a6;border-radius:8px;padding:10px 14px;min-width:190px}
.card.ok{border-left-color:#0f9d58}.card.bad{border-left-color:#d93025}
.card .v{font-size:26px;font-weight:650}.card .l{font-size:12px;color:#5f6368}.card .t{font-size:12px}
.charts{display:flex;flex-wrap:wrap;gap:16px}.chart{background:#fff;border:1px solid #dadce0;border-radius:8px;padding:8px;flex:1 1 520px}
table{border-collapse:collapse;background:#fff;width:100%;font-size:13px}
th,td{border:1px solid #e0e0e0;padding:6px 8px;vertical-align:top;text-align:left}
th{background:#f1f3f4;font-weight:600}td.n{text-align:right;white-space:nowrap}
.ans{white-space:pre-wrap;max-height:12em;overflow:auto;font-size:12px}
mark.hit{background:#ceead6;color:#0d652d;border-radius:2px;padding:0 1px}
.kw{display:inline-block;border-radius:10px;padding:0 7px;margin:1px 2px;font-size:11px}
.kw.hit{background:#ceead6;color:#0d652d}.kw.miss{background:#fad2cf;color:#a50e0e}
.score{font-weight:600;font-size:12px}.score.full{color:#0d652d}.score.zero{color:#a50e0e}
.lab{font-weight:600;font-size:12px;text-transform:uppercase}.lab.admits{color:#0d652d}.lab.invents,.lab.hedges{color:#a50e0e}.lab.vague{color:#5f6368}
.leak{color:#a50e0e;font-weight:600}.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px}
.warn{background:#fef7e0;border:1px solid #f9ab00;border-radius:6px;padding:8px 12px}
.small{font-size:12px;color:#5f6368}
"""


def _highlight(answer: str, keywords: list[str]) -> str:
    out, pos = [], 0
    for start, end, _ in keyword_spans(answer, keywords):
        out.append(escape(answer[pos:start]))
        out.append(f'<mark class="hit">{escape(answer[start:end])}</mark>')
        pos = end
    out.append(escape(answer[pos:]))
    return "".join(out)


def _cards(r: EvalReport) -> str:
    cards = []
    for key, chk in r.target_checks().items():
        cls = "" if chk["met"] is None else ("ok" if chk["met"] else "bad")
        cards.append(f'<div class="card {cls}"><div class="l">{escape(HEADLINE_LABELS[key])}</div>'
                     f'<div class="v">{escape(headline_value(key, chk["value"]))}</div>'
                     f'<div class="t">target {escape(target_text(key, chk["op"], chk["target"]))}</div></div>')
    leak_cls = "ok" if r.leak_count == 0 else "bad"
    cards.append(f'<div class="card {leak_cls}"><div class="l">Secret leaks in answers</div>'
                 f'<div class="v">{r.leak_count}</div><div class="t">target 0</div></div>')
    return '<div class="cards">' + "".join(cards) + "</div>"


def _charts(r: EvalReport) -> str:
    charts = []
    groups = [(label(c), [r.summaries[c].overall.recall, r.summaries[c].overall.full_rate]) for c in r.conditions]
    charts.append(bar_chart(groups, ["keyword recall", "full recall"], colors=["#1a73e8", "#0f9d58"],
                            title="Recall per condition"))
    cats = sorted({k for s in r.summaries.values() for k in s.by_category})
    if cats:
        groups = [(cat, [r.summaries[c].by_category[cat].recall if cat in r.summaries[c].by_category else None
                         for c in r.conditions]) for cat in cats]
        charts.append(bar_chart(groups, [label(c) for c in r.conditions], colors=[color(c) for c in r.conditions],
                                title="Keyword recall per category", width=max(640, 90 * len(cats) + 80)))
    if any(s.controls for s in r.summaries.values()):
        groups = [(label(c), [r.summaries[c].controls.invented_rate if r.summaries[c].controls else None,
                              r.summaries[c].controls.admits_rate if r.summaries[c].controls else None])
                  for c in r.conditions]
        charts.append(bar_chart(groups, ["invented", "admits not knowing"], colors=["#d93025", "#0f9d58"],
                                title="Control questions"))
    curves = parse_curves(r.curves)
    loss_series = [(n, curves[k]) for n, k in (("train loss", "train_loss"), ("eval loss", "eval_loss")) if curves[k]]
    if loss_series:
        charts.append(line_chart(loss_series, colors=["#1a73e8", "#f29900"], title="Training loss", x_label="step"))
    if curves["probe_recall"]:
        charts.append(line_chart([("probe recall (training sample)", curves["probe_recall"])], colors=["#0f9d58"],
                                 title="Probe recall during training", x_label="step", fmt=lambda v: f"{v * 100:.0f}%"))
    return '<div class="charts">' + "".join(f'<div class="chart">{c}</div>' for c in charts if c) + "</div>"


def _conditions_table(r: EvalReport) -> str:
    rows = []
    for c in r.conditions:
        s = r.summaries[c]
        ctrl = s.controls
        rows.append(
            f'<tr><td><span class="swatch" style="background:{color(c)}"></span>{escape(label(c))}</td>'
            f'<td class="n">{pct(s.overall.recall, 1)}</td><td class="n">{pct(s.overall.full_rate, 1)}</td>'
            f'<td class="n">{s.overall.n}</td><td class="n">{pct(s.retrieval_hit_rate)}</td>'
            f'<td class="n">{pct(ctrl.invented_rate if ctrl else None)}</td>'
            f'<td class="n">{s.leaks}</td><td class="n">{s.seconds:.0f}s</td></tr>')
    return ("<table><tr><th>condition</th><th>keyword recall</th><th>full recall</th><th>probes</th>"
            "<th>right note retrieved</th><th>controls invented</th><th>leaks</th><th>time</th></tr>"
            + "".join(rows) + "</table>")


def _category_table(r: EvalReport) -> str:
    cats = sorted({k for s in r.summaries.values() for k in s.by_category})
    head = "".join(f"<th>{escape(label(c))}</th>" for c in r.conditions)
    rows = []
    for cat in cats:
        n = next((s.by_category[cat].n for s in r.summaries.values() if cat in s.by_category), 0)
        cells = "".join(
            f'<td class="n">{pct(r.summaries[c].by_category[cat].recall) if cat in r.summaries[c].by_category else "–"}'
            f' <span class="small">full {pct(r.summaries[c].by_category[cat].full_rate) if cat in r.summaries[c].by_category else "–"}</span></td>'
            for c in r.conditions)
        rows.append(f"<tr><td>{escape(cat)}</td><td class='n'>{n}</td>{cells}</tr>")
    return f"<table><tr><th>category</th><th>probes</th>{head}</tr>{''.join(rows)}</table>"


def _probe_table(r: EvalReport) -> str:
    head = "".join(f"<th>{escape(label(c))}</th>" for c in r.conditions)
    rows = []
    for i, pr in enumerate(r.probes, 1):
        p = pr.probe
        q = escape(p.question) + (f'<div class="small">context: {escape(p.context)}</div>' if p.context else "")
        q += f'<div class="small">{escape(p.category)} · {escape(p.name or p.id)}</div>'
        cells = []
        for c in r.conditions:
            a = pr.answers[c]
            rec = a.score.recall
            cls = "full" if a.score.full else ("zero" if rec == 0 else "")
            chips = "".join(f'<span class="kw hit">{escape(k)}</span>' for k in a.score.hits)
            chips += "".join(f'<span class="kw miss">{escape(k)}</span>' for k in a.score.missed)
            extra = ""
            if a.retrieval_hit is not None:
                extra += f'<div class="small">right note retrieved: {"yes" if a.retrieval_hit else "no"}</div>'
            if a.leaks:
                extra += f'<div class="leak">secret-looking output ({escape(", ".join(a.leaks))}), shown redacted</div>'
            cells.append(f'<td><div class="score {cls}">{pct(rec)}</div><div>{chips}</div>'
                         f'<div class="ans">{_highlight(a.answer, p.expected_keywords)}</div>{extra}</td>')
        rows.append(f"<tr><td class='n'>{i}</td><td>{q}</td>{''.join(cells)}</tr>")
    return f"<table><tr><th>#</th><th>question</th>{head}</tr>{''.join(rows)}</table>"


def _controls_table(r: EvalReport) -> str:
    head = "".join(f"<th>{escape(label(c))}</th>" for c in r.conditions)
    rows = []
    for cr in r.controls:
        cells = []
        for c in r.conditions:
            a = cr.answers[c]
            why = a.verdict.admission or ", ".join(a.verdict.specifics)
            leak = f'<div class="leak">secret-looking output ({escape(", ".join(a.leaks))})</div>' if a.leaks else ""
            cells.append(f'<td><span class="lab {a.verdict.label}">{a.verdict.label}</span>'
                         f'{f" <span class=small>({escape(why)})</span>" if why else ""}'
                         f'<div class="ans">{escape(a.answer)}</div>{leak}</td>')
        rows.append(f"<tr><td>{escape(cr.question)}</td>{''.join(cells)}</tr>")
    return f"<table><tr><th>question</th>{head}</tr>{''.join(rows)}</table>"


def render_html(r: EvalReport) -> str:
    m = r.meta
    sources = ", ".join(f"{escape(k)}: {v}" for k, v in (m.get("probe_sources") or {}).items())
    body = [
        "<h1>memtune evaluation</h1>",
        f'<div class="meta">adapter <code>{escape(str(m.get("adapter_dir")))}</code> · base model '
        f'{escape(str(m.get("base_model") or "unknown"))} · bundle <code>{escape(str(m.get("bundle") or "none"))}</code><br>'
        f'{m.get("probes")} probes ({sources}) · {len(r.controls)} control questions · '
        f'{escape(str(m.get("created_at")))} · memtune {escape(str(m.get("memtune_version")))}</div>',
        _cards(r),
        _charts(r),
        "<h2>Conditions</h2>", _conditions_table(r),
        '<p class="small">Keyword recall: share of expected keywords found in the answer (case, whitespace, '
        "backticks and markdown ignored). Full recall: share of probes with every keyword. Retrieval conditions "
        "put the top notes from the store's full-text search in the system prompt.</p>",
        "<h2>Recall per category</h2>", _category_table(r),
    ]
    if r.forgetting:
        f = r.forgetting
        body += ["<h2>Forgetting</h2>",
                 f"<p>Mean token loss on the general-English sample <code>{escape(f.sample)}</code> ({f.tokens} tokens): "
                 f"base {num(f.base_loss)}, adapter {num(f.adapter_loss)}: <b>{f.change_pct:+.2f}%</b> "
                 "(target ≤ +5%).</p>"]
    if r.controls:
        body += ["<h2>Control questions (not in the memory)</h2>",
                 '<p class="small">admits = says it does not know; invents = gives specific commands, names or '
                 "numbers; hedges = unsure but still specific (counted as invented); vague = neither.</p>",
                 _controls_table(r)]
    body += ["<h2>Every probe</h2>", _probe_table(r)]
    if r.warnings:
        body += ["<h2>Warnings</h2>", '<div class="warn"><ul>' + "".join(f"<li>{escape(w)}</li>" for w in r.warnings)
                 + "</ul></div>"]
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width,initial-scale=1">'
            f"<title>memtune evaluation</title><style>{CSS}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")
