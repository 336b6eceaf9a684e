"""EarlyStopping: which epoch's adapter is kept and when a run stops, without a model."""

from __future__ import annotations

import pytest

from memtune.train.checkpoint import RunState
from memtune.train.stopping import EarlyStopping, beats


def test_beats_treats_small_recall_gaps_as_ties():
    assert beats([0.81, -0.22], [0.94, -0.31], 8)  # within 0.5/sqrt(8): lower eval loss wins
    assert not beats([0.50, -0.22], [0.94, -0.31], 8)  # a real drop in recall
    assert not beats([0.81, -0.22], [0.94, -0.31], 400)  # many probes: the gap is real
    assert beats([0.95, -0.40], [0.90, -0.30], 0) is True  # no probes sampled: plain comparison


def _run(epochs, *, patience=1, n_probes=400):
    state = RunState()
    stopper = EarlyStopping(state, patience=patience, n_probes=n_probes)
    verdicts = [stopper.update(i + 1, pr, el) for i, (pr, el) in enumerate(epochs)]
    return state, verdicts


def test_keeps_the_best_epoch_and_stops_after_patience_epochs_without_progress():
    state, v = _run([(0.5, 1.0), (0.8, 0.9), (0.6, 0.9), (0.7, 0.89)], patience=2)
    assert [x.better for x in v] == [True, True, False, False]
    assert [x.stop for x in v] == [False, False, False, True]
    assert state.best_epoch == 2 and state.best_metric == [0.8, -0.9] and state.bad_epochs == 2


def test_a_recall_dip_while_eval_loss_still_falls_clearly_is_not_a_bad_epoch():
    state, v = _run([(0.9, 1.0), (0.6, 0.5)], patience=1)
    assert v[1] == v[1].__class__(better=False, stop=False)
    assert state.bad_epochs == 0 and state.best_eval_loss == 0.5 and state.best_epoch == 1


def test_patience_zero_never_stops():
    _, v = _run([(0.9, 1.0), (0.1, 2.0), (0.1, 3.0)], patience=0)
    assert not any(x.stop for x in v)


def test_an_epoch_with_nothing_measured_is_final_but_not_better():
    state, v = _run([(0.5, 1.0), (None, None)])
    assert v[1].better is False and v[1].stop is False
    assert state.best_epoch == 2


def test_eval_loss_decides_without_probes():
    state, v = _run([(None, 1.0), (None, 0.8), (None, 0.85)], patience=1, n_probes=0)
    assert [x.better for x in v] == [True, True, False]
    assert v[2].stop and state.best_epoch == 2


def test_the_record_survives_a_resume():
    """The verdicts live in the checkpoint state: a resumed stopper continues the count."""
    state, _ = _run([(0.8, 1.0), (0.5, 0.99)], patience=2)
    assert state.bad_epochs == 1
    resumed = RunState(**{**state.to_dict()})
    v = EarlyStopping(resumed, patience=2, n_probes=400).update(3, 0.4, 0.99)
    assert v.stop and resumed.best_epoch == 1


@pytest.mark.parametrize("patience", [1, 3])
def test_stop_comes_exactly_after_patience_bad_epochs(patience):
    _, v = _run([(0.9, 1.0)] + [(0.2, 1.0)] * patience, patience=patience)
    assert [x.stop for x in v] == [False] * patience + [True]
