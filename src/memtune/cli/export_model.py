"""``memtune export-model``: an adapter as GGUF files and an Ollama Modelfile, for local runtimes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from memtune.cli.app import JsonOption, app, console, err_console, handle_errors, print_json
from memtune.cli.serve import AdapterArg, BaseOpt, _quiet_transformers


@app.command("export-model")
def export_model_cmd(
    adapter: AdapterArg,
    gguf_dir: Annotated[Path, typer.Option("--gguf", help="Folder for the GGUF files, Modelfile and README.md.",
                                           show_default=False)],
    quant: Annotated[list[str] | None, typer.Option(
        "--quant", help="f16 or q8_0; repeat for both (default: both).", show_default=False)] = None,
    name: Annotated[str | None, typer.Option(
        "--name", help="Model name for the files and `ollama create` (default: the adapter's name).")] = None,
    base: BaseOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the --gguf folder if it exists.")] = False,
    verify: Annotated[bool, typer.Option(
        "--verify/--no-verify", help="Read every file back and check its tensors and greedy answers.")] = True,
    lora: Annotated[bool, typer.Option(
        "--lora", help="Also write the adapter alone as a LoRA GGUF (llama.cpp --lora, Ollama ADAPTER) "
                       "with its base as f16 GGUF and a Modelfile.lora.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Merge the adapter into its base; write GGUF (llama.cpp, LM Studio) and an Ollama Modelfile.

    Each file is read back before anything is written: its tensors against the merged model,
    then, loaded by transformers, its greedy answers against the merged model's.

    Example: memtune export-model .memtune/adapters/myrepo --gguf .memtune/gguf/myrepo [--lora]
    """
    from memtune.serve.export_model import export_model

    with handle_errors():
        _quiet_transformers()
        result = export_model(adapter, gguf_dir, quants=quant, name=name, base=base, force=force, verify=verify, lora=lora,
                              progress=None if json_out else lambda m: err_console.print(f"[dim]{m}…[/]"))
        if json_out:
            print_json(result.to_dict())
            return
        console.print(f"[green]GGUF written to {result.out_dir}[/] (model name {result.name})")
        for f in result.files:
            console.print(f"  {f.file}  {f.bytes / 2**20:.1f} MiB  {f.summary}")
        if result.lora:
            lf = result.lora
            console.print(f"  {lf.adapter_file}  {lf.adapter_bytes / 2**20:.1f} MiB + {lf.base_file}  "
                          f"{lf.base_bytes / 2**20:.1f} MiB  {lf.summary}")
        console.print(f"  Modelfile: {'ChatML TEMPLATE' if result.template == 'chatml' else 'template from the GGUF'}"
                      f"{', SYSTEM from training' if result.system_prompt else ''}, temperature 0")
        console.print(f"Run it: cd {result.out_dir} && ollama create {result.name} -f Modelfile && "
                      f"ollama run {result.name}   (llama.cpp: see README.md)")
