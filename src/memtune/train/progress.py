"""The progress display: a rich bar with loss, real (non-pad) tokens/s and ETA; plain lines
per epoch so logs of non-interactive runs still tell the story.

When stderr is not a terminal (CI, ``nohup``, a log file) rich draws no bar, so a plain
progress line is printed every ``LOG_EVERY_S`` seconds instead: a long run on a slow CPU
would otherwise say nothing between its first line and the end of the first epoch.

Speed and ETA follow the *recent* pace (the last log window, smoothed), not the run's
average: a run that was slowed by another job for a while should say so once it is fast
again, instead of carrying a stale ETA to the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


LOG_EVERY_S = 60.0
SMOOTHING = 0.7
"""Weight of the newest window in the smoothed seconds-per-step and tokens/s."""


class Reporter:
    def __init__(self, *, enabled: bool, total: int, done: int = 0, console: Console | None = None,
                 log_every_s: float = LOG_EVERY_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.enabled = enabled
        self.console = console or Console(stderr=True, highlight=False)
        self.total, self.done = total, done
        self.log_every_s = log_every_s
        self.plain_log = enabled and not self.console.is_terminal
        self._clock = clock
        self._last = self._last_step_t = clock()
        self._pause_total, self._pauses = 0.0, 0  # per-epoch checks (eval loss, probes) between steps
        self._win_steps, self._win_tokens, self._win_secs = 0, 0.0, 0.0
        self._sec_per_step: float | None = None  # wall clock, smoothed over log windows
        self._tps: float | None = None  # tokens per second of optimizer steps, smoothed
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

    def step(self, loss: float, tokens: float, seconds: float, epoch: int, epochs: int) -> None:
        """One optimizer step: its loss, its real (non-pad) tokens and the seconds it took."""
        self.done += 1
        self._win_steps += 1
        self._win_tokens += tokens
        self._win_secs += seconds
        if seconds > 0:
            self._tps = _blend(self._tps, tokens / seconds, 0.1)  # per step: the bar updates every step
        if self.progress is not None:
            self.progress.update(self.task, advance=1, loss=f"{loss:.4f}", tps=f"{self._tps or 0:.0f}",
                                 description=f"epoch {epoch}/{epochs}")
        now = self._clock()
        if self.plain_log and (now - self._last >= self.log_every_s or self.done == self.total):
            self._sec_per_step = _blend(self._sec_per_step, (now - self._last) / self._win_steps, SMOOTHING)
            tps = self._win_tokens / self._win_secs if self._win_secs > 0 else 0.0
            checks_left = max(epochs - epoch + 1, 0) if self._pauses else 0
            per_check = self._pause_total / max(self._pauses, 1)
            eta = self._sec_per_step * max(self.total - self.done, 0) + checks_left * per_check
            self._last = now
            self._win_steps, self._win_tokens, self._win_secs = 0, 0.0, 0.0
            self.console.print(f"step {self.done}/{self.total} (epoch {epoch}/{epochs}): loss {loss:.4f}, "
                               f"{tps:.0f} tok/s, ETA {_clock(eta)}", markup=False)
        self._last_step_t = now

    def epoch(self, row: dict[str, Any], *, best: bool) -> None:
        """An epoch's checks ran since the last step: their time is kept out of the pace of
        steps (it would make the next ETA hours long) and counted once per epoch left instead."""
        now = self._clock()
        pause = max(now - self._last_step_t, 0.0)
        self._pause_total += pause
        self._pauses += 1
        self._last += pause
        self._last_step_t = now
        if not self.enabled:
            return

        def f(v: Any) -> str:
            return "-" if v is None else f"{v:.4f}"

        self.info(f"epoch {row['epoch']}: train loss {f(row['train_loss'])}, eval loss {f(row['eval_loss'])}, "
                  f"probe recall {f(row['probe_recall'])}" + (" [green](best)[/]" if best else ""))

    def info(self, msg: str) -> None:
        if self.enabled:
            (self.progress.console if self.progress is not None else self.console).print(msg)


def _blend(old: float | None, new: float, weight: float) -> float:
    return new if old is None else weight * new + (1 - weight) * old


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
