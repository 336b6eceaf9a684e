"""The progress display: a rich bar with loss, real (non-pad) tokens/s and ETA; plain lines
per epoch so logs of non-interactive runs still tell the story."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class Reporter:
    def __init__(self, *, enabled: bool, total: int, done: int = 0) -> None:
        self.enabled = enabled
        self.console = Console(stderr=True, highlight=False)
        self.progress: Progress | None = None
        self.task: Any = None
        if enabled:
            self.progress = Progress(
                TextColumn("[bold blue]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss [bold]{task.fields[loss]}"),
                TextColumn("{task.fields[tps]} tok/s"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self.task = self.progress.add_task("training", total=total, completed=done, loss="-", tps="-")

    def __enter__(self) -> Reporter:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def step(self, loss: float, tps: float, epoch: int, epochs: int) -> None:
        if self.progress is not None:
            self.progress.update(self.task, advance=1, loss=f"{loss:.4f}", tps=f"{tps:.0f}",
                                 description=f"epoch {epoch}/{epochs}")

    def epoch(self, row: dict[str, Any], *, best: bool) -> None:
        if not self.enabled:
            return

        def f(v: Any) -> str:
            return "-" if v is None else f"{v:.4f}"

        self.info(f"epoch {row['epoch']}: train loss {f(row['train_loss'])}, eval loss {f(row['eval_loss'])}, "
                  f"probe recall {f(row['probe_recall'])}" + (" [green](best)[/]" if best else ""))

    def info(self, msg: str) -> None:
        if self.enabled:
            (self.progress.console if self.progress is not None else self.console).print(msg)
