"""``memtune export``: the store → a training bundle (examples, probes, adapter config, train.py)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from memtune.cli.app import (DbOption, JsonOption, app, console, err_console, handle_errors, hidden_option,
                             open_store, print_json)
from memtune.errors import ConfigError, MemtuneError, NotFoundError
from memtune.recipes import default_recipe

_RX = default_recipe().export
#: lora.KEY in --set / --config → the ExportConfig field behind the bundle's adapter_config.json
_LORA_TO_EXPORT = {"rank": "lora_rank", "alpha": "lora_alpha", "dropout": "lora_dropout"}



if TYPE_CHECKING:
    from memtune.dataset import ExportResult


@app.command("export")
def export_cmd(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Bundle directory to create. "
                                             "Default: $MEMTUNE_EXPORT_OUTPUT_PATH.", show_default=False)] = None,
    fmt: Annotated[str | None, typer.Option("--format", "-f", help="messages (TRL, default) | openai | sharegpt | "
                                            "alpaca | anthropic | prompt-completion.", show_default=False)] = None,
    examples_per_guideline: Annotated[int | None, typer.Option("--examples-per-guideline", "-n",
                                                               help="Distinct examples per guideline, 1-50 "
                                                               f"(recipe: {_RX['examples_per_guideline']}).",
                                                               show_default=False)] = None,
    negatives: Annotated[bool | None, typer.Option("--negatives/--no-negatives",
                                                   help="Anti-pattern proposals answered 'no' "
                                                   f"(recipe: {'on' if _RX['include_negative'] else 'off'}).",
                                                   show_default=False)] = None,
    split_ratio: Annotated[float | None, typer.Option("--split-ratio", help="Eval fraction, 0-0.5 "
                                                      f"(recipe: {_RX['split_ratio']}).",
                                                      show_default=False)] = None,
    split_by: Annotated[str | None, hidden_option("--split-by", help="phrasing (eval = unseen phrasings, default) | "
                                                 "guideline (hold out whole guidelines).")] = None,
    target_model: Annotated[str | None, typer.Option("--target-model", help="model_type, hub id or local dir "
                                                     "(default: embedded SmolLM2-135M).", show_default=False)] = None,
    no_script: Annotated[bool, hidden_option("--no-script", help="Skip train.py and requirements.txt.")] = False,
    no_metadata: Annotated[bool, hidden_option("--no-metadata", help="No per-example metadata.")] = False,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed (default 42).", show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty output directory.")] = False,
    rag_fraction: Annotated[float | None, hidden_option("--rag-fraction", help="Recipe key rag_fraction.")] = None,
    rag_copies: Annotated[float | None, hidden_option("--rag-copies", help="Recipe key rag_copies.")] = None,
    fact_rag_copies: Annotated[float | None, hidden_option("--fact-rag-copies", help="Recipe key fact_rag_copies.")] = None,
    fact_share: Annotated[float | None, hidden_option("--fact-share", help="Recipe key fact_share.")] = None,
    min_topic_questions: Annotated[int | None, hidden_option("--min-topic-questions",
                                                       help="Recipe key min_topic_questions.")] = None,
    named_answers: Annotated[bool | None, hidden_option("--named-answers/--varied-answers",
                                                  help="Recipe key named_answers.")] = None,
    rag_gold_first: Annotated[float | None, hidden_option("--rag-gold-first", help="Recipe key rag_gold_first.")] = None,
    control_fraction: Annotated[float | None, hidden_option("--control-fraction", help="Recipe key control_fraction.")]
    = None,
    control_rag_fraction: Annotated[float | None, hidden_option("--control-rag-fraction",
                                                          help="Recipe key control_rag_fraction.")] = None,
    near_miss_share: Annotated[float | None, hidden_option("--near-miss-share", help="Recipe key near_miss_share.")]
    = None,
    scope: Annotated[str | None, typer.Option("--scope", help="Scope type: global, org, project or session.")] = None,
    scope_id: Annotated[str | None, typer.Option("--scope-id", help="Scope id (e.g. the project name).")] = None,
    category: Annotated[list[str] | None, typer.Option("--category", "-c", help="Category (repeatable).")] = None,
    priority_min: Annotated[int | None, typer.Option("--priority-min", help="Lowest priority (0-100).")] = None,
    priority_max: Annotated[int | None, typer.Option("--priority-max", help="Highest priority (0-100).")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t", help="Tag (repeatable; a guideline with any of "
                                                  "them matches, --tags-mode all: every one).")] = None,
    tags_mode: Annotated[str, hidden_option("--tags-mode", help="any | all of the --tag values.")] = "any",
    include_inactive: Annotated[bool, typer.Option("--include-inactive", help="Export deactivated guidelines too.")]
    = False,
    paraphrase_url: Annotated[str | None, typer.Option("--paraphrase-url", help="OpenAI-compatible endpoint "
                                                       "(…/v1) to paraphrase questions; cached.")] = None,
    paraphrase_model: Annotated[str | None, hidden_option("--paraphrase-model", help="Model name for "
                                                    "--paraphrase-url.")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="YAML of export keys (or a recipe file: its "
                                                "export section); flags and --set win.", show_default=False)] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="One recipe value, KEY=VALUE (repeatable), e.g. "
                                                   "--set control_fraction=0.2 --set lora.rank=16. `memtune recipe` "
                                                   "lists the keys.", show_default=False)] = None,
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """Export guidelines as a LoRA training bundle that memtune, TRL, LLaMA-Factory, Axolotl and OpenAI accept.

    Every default is the target model's recipe (`memtune recipe`); the data mix (how many
    questions ask for a value, notes-in-prompt copies, "not in memory" controls, ...) is
    changed with --set KEY=VALUE or --config.
    """
    with handle_errors():
        from memtune.dataset import ExportConfig, export_guidelines_as_lora
        from memtune.store import GuidelineFilter

        flt = GuidelineFilter(scope_type=scope, scope_id=scope_id, category=category or None,
                              priority_min=priority_min, priority_max=priority_max, tags=tag or None,
                              tags_mode=tags_mode, active_only=not include_inactive)
        flags = dict(
            output_path=out, format=fmt, filter=flt, examples_per_guideline=examples_per_guideline,
            include_negative=negatives, split_ratio=split_ratio, split_by=split_by, target_model=target_model,
            generate_script=False if no_script else None, include_metadata=False if no_metadata else None,
            seed=seed, force=force or None, rag_fraction=rag_fraction, rag_copies=rag_copies,
            fact_rag_copies=fact_rag_copies, fact_share=fact_share, min_topic_questions=min_topic_questions,
            named_answers=named_answers, rag_gold_first=rag_gold_first, control_fraction=control_fraction,
            control_rag_fraction=control_rag_fraction, near_miss_share=near_miss_share, paraphrase_url=paraphrase_url, paraphrase_model=paraphrase_model,
        )
        layered = {**export_overrides(config, set_ or []), **{k: v for k, v in flags.items() if v is not None}}
        config_ = ExportConfig.from_sources(**layered)
        store = open_store(db)
        if json_out:
            result = export_guidelines_as_lora(store, config_)
        else:
            with Progress(TextColumn("[bold]exporting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=err_console, transient=True) as bar:
                task = bar.add_task("export", total=None)
                result = export_guidelines_as_lora(
                    store, config_, progress=lambda done, total: bar.update(task, completed=done, total=total))
        if json_out:
            print_json(result.to_dict())
        if not result.success:
            cls = NotFoundError if (result.error or "").startswith("no guidelines") else MemtuneError
            raise cls(result.error or "export failed", hint=result.warnings[0] if result.warnings else None)
        if not json_out:
            _summary(result)


def _summary(result: ExportResult) -> None:
    stats = result.stats
    out = Path(next(iter(result.files.values()))).parent
    console.print(f"[bold green]Bundle written[/] to {escape(str(out))} ({result.format})", soft_wrap=True)
    t = Table(show_header=False)
    t.add_column(style="bold")
    t.add_column()
    t.add_row("guidelines", f"{stats['guidelines_exported']} of {stats['guidelines_matched']} matched"
              + (f" ({stats['guidelines_held_out']} held out)" if stats["guidelines_held_out"] else ""))
    t.add_row("examples", f"{stats['examples_total']} = {stats['examples_train']} train + {stats['examples_eval']} eval")
    t.add_row("negatives", str(stats["negatives"]))
    t.add_row("with retrieved notes", str(stats["rag_examples"]))
    t.add_row("probes", str(stats["probes"]))
    if stats.get("secrets_removed"):
        t.add_row("secrets removed", f"{stats['secrets_removed']} (the store still holds them; see the warning)")
    t.add_row("fingerprint", stats["fingerprint"][:23] + "…")
    t.add_row("time", f"{stats['seconds']} s")
    console.print(t)
    files = Table(show_header=True, header_style="bold")
    files.add_column("file")
    files.add_column("bytes", justify="right")
    sizes = stats.get("file_sizes", {})
    for path in result.files.values():
        files.add_row(escape(Path(path).name), f"{sizes.get(Path(path).name, 0):,}")
    console.print(files)
    for w in result.warnings:
        console.print(f"[yellow]warning:[/] {escape(w)}")


def export_overrides(config: Path | None, items: list[str]) -> dict[str, Any]:
    """``--config`` then ``--set`` (later wins) as ExportConfig keyword arguments.

    A bare KEY is an export key; ``export.KEY`` is the same; ``lora.rank/alpha/dropout`` set the
    bundle's ``adapter_config.json`` (training reads its LoRA shape from the recipe, see
    ``memtune train --set lora.KEY``). A recipe-shaped file contributes its ``export`` and
    ``lora`` sections; a flat file is read as export keys.
    """
    import yaml

    from memtune.recipes import parse_overrides

    values: dict[str, Any] = {}
    if config is not None:
        try:
            data = yaml.safe_load(config.expanduser().read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise ConfigError([f"--config {config}: cannot read it ({exc.strerror or exc})"],
                              hint="pass an existing YAML file") from exc
        except yaml.YAMLError as exc:
            raise ConfigError([f"--config {config}: not valid YAML: {exc}"], hint="fix the file") from exc
        if not isinstance(data, dict):
            raise ConfigError([f"--config {config}: expected a mapping of KEY: value"],
                              hint="e.g. control_fraction: 0.2, or an `export:` section as in `memtune recipe --raw`")
        if {"export", "lora", "train", "eval"} & set(data):
            values.update(data.get("export") or {})
            lora = data.get("lora") or {}
            values.update({_LORA_TO_EXPORT[k]: v for k, v in lora.items() if k in _LORA_TO_EXPORT})
        else:
            values.update(data)
    lora_items = [i for i in items if i.strip().startswith("lora.")]
    parsed = parse_overrides([i if "." in i.partition("=")[0] else f"export.{i}" for i in items
                              if i not in lora_items])
    if parsed["train"] or parsed["eval"]:
        raise ConfigError([f"--set {k}: not an export key" for k in [*parsed["train"], *parsed["eval"]]],
                          hint="memtune export takes export keys (and lora.rank/alpha/dropout); "
                               "training keys go to memtune train")
    values.update(parsed["export"])
    for item in lora_items:
        key, _, raw = item.partition("=")
        name = key.strip()[len("lora."):]
        if name not in _LORA_TO_EXPORT:
            raise ConfigError([f"--set {item!r}: the bundle records lora.{', lora.'.join(_LORA_TO_EXPORT)} only"],
                              hint="the adapter's other LoRA keys are training's: memtune train --set lora.KEY=VALUE")
        values[_LORA_TO_EXPORT[name]] = yaml.safe_load(raw) if raw.strip() else raw
    return values
