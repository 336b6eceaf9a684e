"""The training reporter: plain progress lines when nobody sees the bar."""

from __future__ import annotations

import io

from rich.console import Console

from memtune.train.progress import Reporter


def _console(terminal: bool) -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, force_terminal=terminal, width=200, highlight=False), buf


def test_non_terminal_logs_plain_step_lines_with_eta() -> None:
    con, buf = _console(terminal=False)
    rep = Reporter(enabled=True, total=4, console=con, log_every_s=0.0)
    with rep:
        for _ in range(4):
            rep.step(1.25, 600.0, 2.0, 1, 2)
    lines = [ln for ln in buf.getvalue().splitlines() if ln.startswith("step ")]
    assert [ln.split()[1] for ln in lines] == ["1/4", "2/4", "3/4", "4/4"]
    assert "loss 1.2500, 300 tok/s, ETA 0:00:00" in lines[-1]
    assert "(epoch 1/2)" in lines[0]


def test_non_terminal_lines_are_rate_limited_but_the_last_step_always_logs() -> None:
    con, buf = _console(terminal=False)
    rep = Reporter(enabled=True, total=50, console=con, log_every_s=3600.0)
    with rep:
        for _ in range(50):
            rep.step(0.5, 100.0, 1.0, 2, 2)
    lines = [ln for ln in buf.getvalue().splitlines() if ln.startswith("step ")]
    assert len(lines) == 1 and lines[0].startswith("step 50/50")


def test_terminal_shows_the_bar_not_plain_lines() -> None:
    con, buf = _console(terminal=True)
    rep = Reporter(enabled=True, total=3, console=con, log_every_s=0.0)
    with rep:
        for _ in range(3):
            rep.step(0.5, 100.0, 1.0, 1, 1)
    assert not [ln for ln in buf.getvalue().splitlines() if ln.startswith("step ")]


def test_disabled_reporter_prints_nothing() -> None:
    con, buf = _console(terminal=False)
    rep = Reporter(enabled=False, total=3, console=con, log_every_s=0.0)
    with rep:
        rep.step(0.5, 100.0, 1.0, 1, 1)
        rep.epoch({"epoch": 1, "train_loss": 1.0, "eval_loss": None, "probe_recall": 0.5}, best=True)
    assert buf.getvalue() == ""


class _FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _timed_reporter() -> tuple[Reporter, _FakeClock, io.StringIO]:
    con, buf = _console(terminal=False)
    clock = _FakeClock()
    return Reporter(enabled=True, total=100, console=con, log_every_s=10.0, clock=clock), clock, buf


def _step_lines(buf: io.StringIO) -> list[str]:
    return [ln for ln in buf.getvalue().splitlines() if ln.startswith("step ")]


def _eta_seconds(line: str) -> int:
    h, m, sec = (int(x) for x in line.rsplit("ETA ", 1)[1].split(":"))
    return h * 3600 + m * 60 + sec


def test_speed_and_eta_follow_the_recent_pace_not_the_run_average() -> None:
    """10 slow steps (10 s each, shared machine) then fast ones (1 s): the line after the
    slow stretch must not keep predicting 10 s per step."""
    rep, clock, buf = _timed_reporter()
    with rep:
        for _ in range(10):
            clock.t += 10.0
            rep.step(1.0, 100.0, 10.0, 1, 1)  # 10 tok/s
        for _ in range(40):
            clock.t += 1.0
            rep.step(1.0, 100.0, 1.0, 1, 1)  # 100 tok/s
    lines = _step_lines(buf)
    assert "10 tok/s" in lines[0]
    assert lines[-1].startswith("step 50/100") and "100 tok/s" in lines[-1]
    # 50 steps left at ~1 s each (smoothed), far below the run average's 2.8 s per step (140 s)
    assert 50 <= _eta_seconds(lines[-1]) <= 60


def test_the_time_of_per_epoch_checks_is_kept_out_of_the_step_pace() -> None:
    """Steps of 1 s, then a 300 s probe check at the end of epoch 1 of 2: the ETA after it is
    the steps left at ~1 s plus one more check, not 300 s smeared over the next window's steps."""
    rep, clock, buf = _timed_reporter()
    with rep:
        for _ in range(50):
            clock.t += 1.0
            rep.step(1.0, 100.0, 1.0, 1, 2)
        clock.t += 300.0
        rep.epoch({"epoch": 1, "train_loss": 1.0, "eval_loss": 0.5, "probe_recall": 0.5}, best=True)
        for _ in range(10):
            clock.t += 1.0
            rep.step(1.0, 100.0, 1.0, 2, 2)
    lines = _step_lines(buf)
    assert lines[-1].startswith("step 60/100")
    assert 330 <= _eta_seconds(lines[-1]) <= 350  # 40 steps x 1 s + one 300 s check
