"""The shared training loop: history means, monitor, divergence stop that keeps finite parameters."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genphys.fitting import History, TrainingDivergedError, fit, minibatches
from genphys.seeding import make_generator


def _least_squares(seed: int):
    g = make_generator(seed=seed)
    x = torch.randn(100, 3, generator=g, dtype=torch.float64)
    y = x @ torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    model = torch.nn.Linear(3, 1, dtype=torch.float64)
    with torch.no_grad():
        model.weight.zero_()
        model.bias.zero_()
    return g, x, y, model


def test_records_are_size_weighted_means_of_the_step_outputs_recomputed_independently():
    g, x, y, model = _least_squares(0)
    seen: list[tuple[int, float]] = []

    def step(batch):
        xb, yb = batch
        value = float(((xb.sum(1) - yb) ** 2).mean())  # no update: deterministic value
        seen.append((xb.shape[0], value))
        return {"loss": value}

    history = fit(
        step, lambda e: minibatches((x, y), 32, generator=g), n_epochs=2, parameters=model
    )
    assert len(history) == 2
    assert history["epoch"].tolist() == [1.0, 2.0]
    first = seen[:4]  # 32 + 32 + 32 + 4
    assert [n for n, _ in first] == [32, 32, 32, 4]
    expected = sum(n * v for n, v in first) / 100
    assert history["loss"][0] == pytest.approx(expected, rel=1e-12)
    # The epoch mean equals the full-data mean (each point once per epoch).
    assert history["loss"][0] == pytest.approx(float(((x.sum(1) - y) ** 2).mean()), rel=1e-10)


def test_training_reduces_the_loss_and_the_monitor_is_recorded():
    g, x, y, model = _least_squares(1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def step(batch):
        xb, yb = batch
        loss = ((model(xb).squeeze(1) - yb) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss}

    def monitor(epoch):
        with torch.no_grad():
            return {"full_loss": ((model(x).squeeze(1) - y) ** 2).mean()}

    history = fit(
        step,
        lambda e: minibatches((x, y), 10, generator=g),
        n_epochs=5,
        parameters=model,
        monitor=monitor,
    )
    assert np.all(np.diff(history["full_loss"]) < 0)
    assert history["full_loss"][-1] < 1e-3 * history["full_loss"][0]
    assert set(history.names) >= {"epoch", "seconds", "loss", "full_loss", "monitor_seconds"}


def test_divergence_stops_names_the_place_and_restores_the_epoch_start_parameters():
    g, x, y, model = _least_squares(2)
    opt = torch.optim.SGD(model.parameters(), lr=1e3)  # diverges within a few epochs
    starts = []

    def step(batch):
        xb, yb = batch
        loss = ((model(xb).squeeze(1) - yb) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss}

    def batches(epoch):
        starts.append(model.weight.detach().clone())
        return minibatches((x, y), 10, generator=g)

    with pytest.raises(
        TrainingDivergedError, match=r"diverged at epoch \d+, mini-batch \d+: loss"
    ) as info:
        fit(step, batches, n_epochs=100, parameters=model, desc="least squares")
    err = info.value
    assert err.quantity == "loss"
    assert len(err.history) == err.epoch - 1
    assert torch.isfinite(model.weight).all()
    assert torch.equal(model.weight, starts[err.epoch - 1])


def test_non_finite_monitor_stops_training():
    _, x, _, model = _least_squares(3)
    with pytest.raises(TrainingDivergedError, match="score is nan") as info:
        fit(
            lambda b: {"loss": 0.0},
            lambda e: [x],
            n_epochs=3,
            parameters=model,
            monitor=lambda e: {"score": math.nan if e == 2 else 1.0},
        )
    assert info.value.epoch == 2 and len(info.value.history) == 1


def test_history_continues_and_columns_have_nan_where_missing():
    h = History()
    h.append({"epoch": 1, "a": 1.0})
    h.append({"epoch": 2, "b": 2.0})
    assert np.isnan(h["a"][1]) and h["b"][1] == 2.0
    with pytest.raises(KeyError, match="name must be one of epoch, a, b"):
        h.column("c")
    _, x, _, model = _least_squares(4)
    fit(lambda b: {"a": 3.0}, lambda e: [x], n_epochs=1, parameters=model, history=h)
    assert h["epoch"].tolist() == [1.0, 2.0, 3.0]


def test_a_name_reported_on_some_mini_batches_is_averaged_over_those_alone():
    # The step reports "x" only on the batch whose sum is positive: its epoch mean is 4,
    # the value it reported, not 4 diluted by the batch that did not report it.
    history = fit(
        lambda b: {"x": 4.0} if b.sum() > 0 else {},
        lambda e: [torch.ones(1), torch.zeros(1)],
        n_epochs=1,
        parameters=[torch.zeros(1)],
    )
    assert history["x"].tolist() == [4.0]
    # With sizes 3 and 1 reporting 1.0 and 5.0 and a third batch reporting only "y":
    # the size-weighted mean of "x" over its two batches is (3 * 1 + 1 * 5) / 4 = 2.
    outputs = iter([{"x": 1.0}, {"x": 5.0}, {"y": 7.0}])
    history = fit(
        lambda b: next(outputs),
        lambda e: [torch.ones(3), torch.ones(1), torch.ones(2)],
        n_epochs=1,
        parameters=[torch.zeros(1)],
    )
    assert history["x"].tolist() == [2.0] and history["y"].tolist() == [7.0]


def test_minibatches_reject_empty_data():
    with pytest.raises(ValueError, match="data must hold at least one sample"):
        next(minibatches(torch.zeros(0, 3), 2, generator=make_generator(seed=0)))
    with pytest.raises(ValueError, match="data must have a first"):
        next(minibatches(torch.tensor(1.0), 2, generator=make_generator(seed=0)))


def test_minibatches_cover_the_data_once_and_are_seeded():
    x = torch.arange(10)
    first = torch.cat(list(minibatches(x, 3, generator=make_generator(seed=0))))
    again = torch.cat(list(minibatches(x, 3, generator=make_generator(seed=0))))
    assert torch.equal(torch.sort(first).values, x) and torch.equal(first, again)
    with pytest.raises(ValueError, match="share its first dimension"):
        next(minibatches((x, x[:3]), 2, generator=make_generator(seed=0)))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"step": 1}, "step must be callable"),
        ({"batches": [1]}, "batches must be callable"),
        ({"n_epochs": 0}, "n_epochs"),
        ({"parameters": 3}, "parameters must be"),
        ({"progress": 1}, "progress must be a bool"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, match):
    args = {
        "step": lambda b: {},
        "batches": lambda e: [],
        "n_epochs": 1,
        "parameters": [torch.zeros(2)],
    } | kwargs
    step = args.pop("step")
    batches = args.pop("batches")
    with pytest.raises((TypeError, ValueError), match=match):
        fit(step, batches, **args)


def test_every_advertised_submodule_imports():
    import importlib

    import genphys

    for name in genphys._SUBMODULES:
        importlib.import_module(f"genphys.{name}")
    assert "fitting" in genphys._SUBMODULES and "seeding" in genphys._SUBMODULES
