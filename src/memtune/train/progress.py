"""The progress display: a rich bar with loss, real (non-pad) tokens/s and ETA; plain lines
per epoch so logs of non-interactive runs still tell the story.

When stderr is not a terminal (CI, ``nohup``, a log file) rich draws no bar, so a plain
progress line is printed every ``LOG_EVERY_S`` seconds instead: a long run on a slow CPU
would otherwise say nothing between its first line and the end of the first epoch.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


LOG_EVERY_S = 60.0


class Reporter:
    def __init__(self, *, enabled: bool, total: int, done: int = 0, console: Console | None = None,
                 log_every_s: float = LOG_EVERY_S) -> None:
        self.enabled = enabled
        self.console = console or Console(stderr=True, highlight=False)
        self.total, self.done = total, done
        self.log_every_s = log_every_s
        self.plain_log = enabled and not self.console.is_terminal
        self._t0 = self._last = time.monotonic()
        self._done0 = done
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
        self.done += 1
        if self.progress is not None:
            self.progress.update(self.task, advance=1, loss=f"{loss:.4f}", tps=f"{tps:.0f}",
                                 description=f"epoch {epoch}/{epochs}")
        now = time.monotonic()
        if self.plain_log and (now - self._last >= self.log_every_s or self.done == self.total):
            self._last = now
            rate = (now - self._t0) / max(self.done - self._done0, 1)  # seconds per step this run
            eta = rate * max(self.total - self.done, 0)
            self.console.print(f"step {self.done}/{self.total} (epoch {epoch}/{epochs}): loss {loss:.4f}, "
                               f"{tps:.0f} tok/s, ETA {_clock(eta)}", markup=False)

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


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
