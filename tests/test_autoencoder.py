"""Tests for genphys.autoencoder: the model, the reconstruction errors, training, and the link to PCA.

Oracles: hand-computed losses and ``torch.nn.functional``; float64 central finite
differences; scikit-learn's PCA and SciPy's ``subspace_angles``; and the theorem that
the optimal linear autoencoder spans the principal subspace (Baldi & Hornik 1989),
with a tolerance derived from the spectral gap.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from model_helpers import binary_data as _binary
from model_helpers import gaussian_data as _gaussian_data

from genphys.autoencoder import (
    ACTIVATIONS,
    Autoencoder,
    bce_reconstruction_error,
    bernoulli_cross_entropy,
    mse_reconstruction_error,
    squared_error,
    train_autoencoder,
)
from genphys.fitting import History, TrainingDivergedError
from genphys.pca import pca, principal_angles, subspace_distance


# ============================================================================ the model
def test_layers_shapes_and_dtype():
    ae = Autoencoder((10, 6, 3), activation="tanh", seed=0)
    linears = [m for m in ae.modules() if isinstance(m, torch.nn.Linear)]
    assert [tuple(m.weight.shape) for m in linears] == [(6, 10), (3, 6), (6, 3), (10, 6)]
    assert all(p.dtype == torch.float64 for p in ae.parameters())
    assert (ae.n_input, ae.n_code, ae.loss_name) == (10, 3, "mse")
    assert isinstance(ae.encoder[1], torch.nn.Tanh) and len(ae.encoder) == 3  # code is linear
    x = torch.rand(7, 10, dtype=torch.float64)
    assert ae.encode(x).shape == (7, 3)
    assert ae.decode(ae.encode(x)).shape == (7, 10)
    assert ae.encode(x[0]).shape == (3,)  # a single data point
    with torch.no_grad():
        np.testing.assert_allclose(ae(x), ae.decoder(ae.encoder(x)), rtol=0)
    assert "sizes=(10, 6, 3)" in repr(ae)


def test_linear_autoencoder_is_affine():
    ae = Autoencoder((5, 2), activation="linear", seed=1)
    assert not [m for m in ae.modules() if type(m) in ACTIVATIONS.values() and m is not ae]
    W, c = ae.encoder[0].weight, ae.encoder[0].bias
    V, d = ae.decoder[0].weight, ae.decoder[0].bias
    x = torch.randn(4, 5, dtype=torch.float64)
    with torch.no_grad():
        np.testing.assert_allclose(ae.reconstruct(x), (x @ W.T + c) @ V.T + d, rtol=1e-14)


def test_sigmoid_output_reconstructs_probabilities():
    ae = Autoencoder((6, 4, 2), activation="relu", output="sigmoid", seed=2)
    x = _binary(5, 6, seed=0)
    logits = ae(x)
    np.testing.assert_allclose(ae.reconstruct(x).detach(), torch.sigmoid(logits).detach())
    assert ae.loss_name == "bce"
    np.testing.assert_allclose(
        ae.reconstruction_error(x).item(), bce_reconstruction_error(x, logits).item(), rtol=1e-14
    )


def test_seeded_init_is_reproducible_and_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    a = Autoencoder((8, 4, 2), seed=5)
    b = Autoencoder((8, 4, 2), seed=5)
    c = Autoencoder((8, 4, 2), seed=6)
    assert torch.equal(torch.random.get_rng_state(), state)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)
    assert not torch.equal(a.encoder[0].weight, c.encoder[0].weight)


def test_glorot_bound_of_initial_weights():
    ae = Autoencoder((30, 20), seed=0)
    bound = math.sqrt(6 / 50)
    w = ae.encoder[0].weight
    assert w.abs().max() <= bound and w.abs().max() > 0.9 * bound
    assert torch.count_nonzero(ae.encoder[0].bias) == 0
    # 600 uniform draws on [-b, b]: variance b²/3, SE of the sample variance ≈ b²·sqrt(4/(45·600))
    se = bound**2 * math.sqrt(4 / 45 / 600)
    assert abs(w.var(unbiased=False).item() - bound**2 / 3) < 5 * se


def test_float32_model():
    ae = Autoencoder((4, 2), dtype=torch.float32, seed=0)
    x = torch.rand(3, 4)
    assert ae.encode(x).dtype == torch.float32


# ============================================================================ the losses
def test_mse_by_hand_and_against_torch():
    x = torch.tensor([[1.0, 2.0, 0.0], [0.0, -1.0, 3.0]], dtype=torch.float64)
    x_tilde = torch.tensor([[0.0, 2.0, 1.0], [0.5, 1.0, 3.0]], dtype=torch.float64)
    # rows: 1 + 0 + 1 = 2 and 0.25 + 4 + 0 = 4.25; mean over the two data points 3.125
    np.testing.assert_allclose(mse_reconstruction_error(x, x_tilde).item(), 3.125, rtol=1e-15)
    np.testing.assert_allclose(
        mse_reconstruction_error(x, x_tilde, reduction="none"), [2.0, 4.25], rtol=1e-15
    )
    np.testing.assert_allclose(mse_reconstruction_error(x, x_tilde, reduction="sum").item(), 6.25)
    torch_value = F.mse_loss(x_tilde, x, reduction="sum") / x.shape[0]
    np.testing.assert_allclose(mse_reconstruction_error(x, x_tilde), torch_value, rtol=1e-15)
    # the per-entry mean of torch's default is smaller by the number of features
    np.testing.assert_allclose(3 * F.mse_loss(x_tilde, x), torch_value, rtol=1e-15)


def test_bce_by_hand_and_against_torch():
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    z = torch.tensor([[0.0, math.log(3.0)], [-2.0, 2.0]], dtype=torch.float64)
    # σ(0) = 1/2; σ(log 3) = 3/4 for x = 0 gives -log(1/4); σ(±2) with x = (0, 1)
    row1 = math.log(2) + math.log(4)
    row2 = 2 * math.log1p(math.exp(-2.0))
    np.testing.assert_allclose(
        bce_reconstruction_error(x, z, reduction="none"), [row1, row2], rtol=1e-14
    )
    g = torch.Generator().manual_seed(0)
    x = _binary(50, 7, seed=1)
    z = 3 * torch.randn(50, 7, generator=g, dtype=torch.float64)
    reference = F.binary_cross_entropy_with_logits(z, x, reduction="sum") / 50
    np.testing.assert_allclose(bce_reconstruction_error(x, z), reference, rtol=1e-13)
    np.testing.assert_allclose(
        bce_reconstruction_error(x, z, reduction="sum"), 50 * reference, rtol=1e-13
    )


def test_bce_is_stable_and_accurate_for_large_logits():
    x = torch.tensor([[1.0, 0.0, 1.0, 0.0, 1.0, 0.0]], dtype=torch.float64)
    z = torch.tensor([[1000.0, -1000.0, -1000.0, 1000.0, 40.0, -40.0]], dtype=torch.float64)
    per_entry = bce_reconstruction_error(x.T, z.T, reduction="none")  # one entry per row
    # exact: log(1 + e^{-1000}) = 0 to double precision, the wrong side costs |z|,
    # and log(1 + e^{-40}) = 4.25e-18 must not be lost to cancellation against 40
    expected = [0.0, 0.0, 1000.0, 1000.0, math.log1p(math.exp(-40)), math.log1p(math.exp(-40))]
    np.testing.assert_allclose(per_entry, expected, rtol=1e-15, atol=0)
    z.requires_grad_(True)
    bce_reconstruction_error(x, z).backward()
    assert bool(torch.isfinite(z.grad).all())
    # σ(z) - x, written so that σ(40) - 1 = -σ(-40) = -4.2e-18 is not rounded to 0
    grad, z = z.grad, z.detach()
    expected = torch.where(x == 1, -torch.sigmoid(-z), torch.sigmoid(z))
    np.testing.assert_allclose(grad, expected, rtol=1e-15, atol=1e-300)


def _central_difference(f, t, eps=1e-6):
    grad = torch.zeros_like(t)
    for i in range(t.numel()):
        e = torch.zeros_like(t).view(-1)
        e[i] = eps
        e = e.view_as(t)
        grad.view(-1)[i] = (f(t + e) - f(t - e)) / (2 * eps)
    return grad


def test_loss_gradients_by_finite_differences():
    g = torch.Generator().manual_seed(3)
    x = _binary(4, 3, seed=2)
    z = 2 * torch.randn(4, 3, generator=g, dtype=torch.float64)
    z[0, 0] = 0.0  # the kink of |z| in naive stable formulas: σ(0) - x must still come out
    x_tilde = torch.randn(4, 3, generator=g, dtype=torch.float64)
    for loss, target, second in (
        (bce_reconstruction_error, x, z),
        (mse_reconstruction_error, torch.randn(4, 3, generator=g, dtype=torch.float64), x_tilde),
    ):
        t = second.clone().requires_grad_(True)
        loss(target, t).backward()
        numeric = _central_difference(lambda s, loss=loss, target=target: loss(target, s), second)
        # central differences in float64 with eps = 1e-6: truncation O(eps²·f''') plus
        # rounding O(1e-16/eps) = 1e-10; 1e-8 leaves a margin
        np.testing.assert_allclose(t.grad, numeric, atol=1e-8, rtol=0)
    # and the closed forms: ∂/∂z = (σ(z) - x)/n, ∂/∂x̃ = 2(x̃ - x)/n
    t = z.clone().requires_grad_(True)
    bce_reconstruction_error(x, t).backward()
    np.testing.assert_allclose(t.grad, (torch.sigmoid(z) - x) / 4, rtol=1e-14, atol=1e-16)
    assert t.grad[0, 0].item() == pytest.approx((0.5 - x[0, 0].item()) / 4, abs=1e-16)
    assert torch.autograd.gradcheck(
        lambda s: bce_reconstruction_error(x, s), (z.clone().requires_grad_(True),)
    )


def test_model_parameter_gradients_by_finite_differences():
    ae = Autoencoder((5, 4, 2), activation="tanh", output="sigmoid", seed=7)
    x = _binary(6, 5, seed=4)
    ae.reconstruction_error(x).backward()
    weight = ae.decoder[0].weight
    analytic = weight.grad.clone()

    def loss_at(w):
        with torch.no_grad():
            saved = weight.clone()
            weight.copy_(w)
            value = ae.reconstruction_error(x).item()
            weight.copy_(saved)
        return value

    numeric = _central_difference(loss_at, weight.detach().clone())
    np.testing.assert_allclose(analytic, numeric, atol=1e-8, rtol=0)


# ============================================================================ training
def test_training_lowers_the_loss_and_records_history():
    x = _gaussian_data([4.0, 1.0, 0.2, 0.1], 200, seed=0)
    x_test = _gaussian_data([4.0, 1.0, 0.2, 0.1], 50, seed=0) + 0.0
    ae = Autoencoder((4, 3, 2), seed=0)
    before = ae.reconstruction_error(x).item()
    history = train_autoencoder(
        ae,
        x,
        x_test=x_test,
        n_epochs=30,
        batch_size=32,
        learning_rate=1e-2,
        seed=1,
        progress=False,
    )
    assert isinstance(history, History) and history.extras["loss_name"] == "mse"
    assert list(history["epoch"]) == list(range(1, 31))
    assert history["train_loss"].shape == history["test_loss"].shape == (30,)
    assert bool((history["seconds"] > 0).all())
    assert history["train_loss"][-1] < 0.5 * before
    # the recorded losses are the returned model's, recomputed independently
    np.testing.assert_allclose(
        history["train_loss"][-1], ae.reconstruction_error(x).item(), rtol=1e-14
    )
    np.testing.assert_allclose(
        history["test_loss"][-1], ae.reconstruction_error(x_test).item(), rtol=1e-14
    )
    assert np.all(np.isfinite(history["batch_loss"]))


def test_training_is_reproducible_and_shuffling_depends_on_the_seed():
    x = _binary(40, 6, seed=3)
    runs = []
    for seed in (1, 1, 2):
        ae = Autoencoder((6, 3), output="sigmoid", seed=0)
        train_autoencoder(
            ae, x, n_epochs=3, batch_size=8, learning_rate=0.05, seed=seed, progress=False
        )
        runs.append(ae.encoder[0].weight.detach().clone())
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])
    # a generator gives the same stream as the same seed
    ae = Autoencoder((6, 3), output="sigmoid", seed=0)
    train_autoencoder(
        ae,
        x,
        n_epochs=3,
        batch_size=8,
        learning_rate=0.05,
        generator=torch.Generator().manual_seed(1),
        progress=False,
    )
    assert torch.equal(ae.encoder[0].weight.detach(), runs[0])


def test_same_seed_same_history_and_global_rng_untouched():
    x = _binary(40, 6, seed=3)
    state = torch.get_rng_state()
    histories = [
        train_autoencoder(
            Autoencoder((6, 3), output="sigmoid", seed=0), x, x_test=x, n_epochs=3, seed=1
        )
        for _ in range(2)
    ]
    for name in ("batch_loss", "train_loss", "test_loss"):
        assert list(histories[0][name]) == list(histories[1][name])
    assert torch.equal(torch.get_rng_state(), state)


def test_training_with_sgd_and_a_progress_bar(capsys):
    x = _gaussian_data([2.0, 1.0, 0.5], 60, seed=1)
    ae = Autoencoder((3, 1), activation="linear", seed=0)
    history = train_autoencoder(
        ae,
        x,
        n_epochs=5,
        batch_size=60,
        learning_rate=0.05,
        optimizer="sgd",
        seed=0,
        progress=True,
    )
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert "autoencoder" in capsys.readouterr().err


def test_divergence_stops_with_the_epoch_and_keeps_finite_parameters():
    # plain gradient descent on a quadratic diverges once the step exceeds 2 / curvature;
    # with data of scale 100 the curvature is ~ 2·1e4, so a step of 1 overshoots by far
    x = 100 * _gaussian_data([1.0, 1.0, 1.0], 64, seed=2)
    ae = Autoencoder((3, 2), activation="linear", seed=0)
    with pytest.raises(TrainingDivergedError, match=r"epoch \d+") as info:
        train_autoencoder(
            ae,
            x,
            n_epochs=50,
            batch_size=16,
            learning_rate=1.0,
            optimizer="sgd",
            seed=0,
            progress=False,
        )
    error = info.value
    assert isinstance(error, FloatingPointError)
    assert error.epoch >= 1 and "loss" in error.quantity
    assert f"epoch {error.epoch}" in str(error) and "learning_rate" in str(error)
    assert "nan" in str(error) or "inf" in str(error)
    # the history holds exactly the epochs completed before the divergence
    assert isinstance(error.history, History)
    assert len(error.history) == error.epoch - 1
    assert all(bool(torch.isfinite(p).all()) for p in ae.parameters())
    assert math.isfinite(ae.reconstruction_error(x).item())


# ================================================== the linear autoencoder spans the PCA space
# Eigenvalues with a clear gap after the second: 3.8 versus 0.5 (sample values differ a little)
LAMBDA = [9.0, 4.0, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05]


def test_pca_autoencoder_attains_the_closed_form_optimum():
    x = _gaussian_data(LAMBDA, 1000, seed=0)
    res = pca(x, 2)
    ae = Autoencoder.from_pca(res)
    loss = ae.reconstruction_error(x)
    np.testing.assert_allclose(loss.item(), res.discarded_variance.item(), rtol=1e-12)
    loss.backward()
    # a global optimum is a stationary point: every gradient vanishes to rounding error
    for name, p in ae.named_parameters():
        assert p.grad.abs().max() < 1e-12, name
    # and it is not unique: V C⁻¹, C W for any invertible C reconstructs the same way
    C = torch.tensor([[2.0, 1.0], [0.0, 0.5]], dtype=torch.float64)
    with torch.no_grad():
        ae.encoder[0].weight.copy_(C @ ae.encoder[0].weight)
        ae.encoder[0].bias.copy_(C @ ae.encoder[0].bias)
        ae.decoder[0].weight.copy_(ae.decoder[0].weight @ torch.linalg.inv(C))
    np.testing.assert_allclose(ae.reconstruction_error(x).item(), loss.item(), rtol=1e-12)


def test_trained_linear_autoencoder_spans_the_principal_subspace():
    x = _gaussian_data(LAMBDA, 1000, seed=0)
    k = 2
    res = pca(x, k)
    ae = Autoencoder((8, k), activation="linear", seed=1)
    history = train_autoencoder(
        ae,
        x,
        n_epochs=600,
        batch_size=1000,
        learning_rate=0.04,
        optimizer="sgd",
        seed=0,
        progress=False,
    )
    excess = history["train_loss"][-1] - res.discarded_variance.item()
    # (1) no linear autoencoder beats PCA (up to rounding of sums of ~1e3 terms)
    assert excess > -1e-12
    # (2) training converged: the excess error is small next to the discarded 1.6
    assert excess < 1e-3
    # (3) the decoder's column space S satisfies L - L_PCA >= (λ_k - λ_{k+1}) Σ sin²θ_i:
    # with p_i = u_iᵀ P_S u_i, tr(P_U Σ) - tr(P_S Σ) >= λ_k Σ_{i<=k} (1 - p_i) - λ_{k+1}
    # Σ_{i>k} p_i and both sums equal Σ sin²θ_i. So sin θ_max <= sqrt(excess / gap).
    gap = (res.eigenvalues[k - 1] - res.eigenvalues[k]).item()
    V = ae.decoder[0].weight.detach()  # (D, k)
    sines = torch.sin(principal_angles(V, res.components))
    bound = math.sqrt(excess / gap)  # <= sqrt(1e-3 / 3.3) = 0.017 by (2)
    assert sines.max().item() <= bound + 1e-12
    assert subspace_distance(V, res.components).item() <= bound + 1e-12
    # the product V W is (close to) the projector on the principal subspace
    W = ae.encoder[0].weight.detach()  # (k, D)
    P = res.components @ res.components.T
    assert torch.linalg.matrix_norm(V @ W - P, ord=2) < 0.1


# ============================================================================ bad input
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"sizes": 5}, TypeError, "sizes"),
        ({"sizes": "ab"}, TypeError, "sizes"),
        ({"sizes": (5,)}, ValueError, "sizes"),
        ({"sizes": (5, 0)}, ValueError, r"sizes\[1\]"),
        ({"sizes": (5, 2.0)}, TypeError, r"sizes\[1\]"),
        ({"sizes": (5, 2), "activation": "gelu"}, ValueError, "activation"),
        ({"sizes": (5, 2), "code_activation": "swish"}, ValueError, "code_activation"),
        ({"sizes": (5, 2), "output": "softmax"}, ValueError, "output"),
        ({"sizes": (5, 2), "dtype": torch.int64}, TypeError, "dtype"),
        ({"sizes": (5, 2), "seed": -1}, ValueError, "seed"),
    ],
)
def test_autoencoder_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        Autoencoder(**kwargs)


def test_model_methods_reject_bad_input():
    ae = Autoencoder((4, 2), output="sigmoid", seed=0)
    with pytest.raises(ValueError, match="x must have 4 columns"):
        ae.encode(torch.zeros(3, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match="x must have 1 or 2 dimensions"):
        ae.encode(torch.zeros(2, 3, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="x must contain only finite"):
        ae.encode(torch.full((1, 4), float("nan"), dtype=torch.float64))
    with pytest.raises(TypeError, match="x must have dtype torch.float64"):
        ae.encode(torch.zeros(1, 4, dtype=torch.float32))
    with pytest.raises(ValueError, match="h must have 2 columns"):
        ae.decode(torch.zeros(3, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="x must have 4 columns"):
        ae(torch.zeros(3, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="x must have 4 columns"):
        ae.reconstruct(torch.zeros(3, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="x must be binary"):
        ae.reconstruction_error(torch.full((2, 4), 0.5, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"x must have shape \(n_samples, 4\)"):
        ae.reconstruction_error(torch.zeros(4, dtype=torch.float64))
    with pytest.raises(ValueError, match="reduction"):
        ae.reconstruction_error(torch.zeros(2, 4, dtype=torch.float64), reduction="max")
    with pytest.raises(TypeError, match="result must be a PCAResult"):
        Autoencoder.from_pca(torch.eye(3))


def test_losses_reject_bad_input():
    x = torch.zeros(3, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="x_tilde must have the shape of x"):
        mse_reconstruction_error(x, torch.zeros(3, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="x must have 2 dimensions"):
        mse_reconstruction_error(torch.zeros(3, dtype=torch.float64), torch.zeros(3))
    with pytest.raises(ValueError, match="x_tilde must contain only finite"):
        mse_reconstruction_error(x, torch.full((3, 2), float("nan"), dtype=torch.float64))
    with pytest.raises(TypeError, match="x_tilde must have dtype torch.float64"):
        mse_reconstruction_error(x, torch.zeros(3, 2, dtype=torch.float32))
    with pytest.raises(ValueError, match="reduction"):
        mse_reconstruction_error(x, x, reduction="avg")
    with pytest.raises(ValueError, match="x must be binary"):
        bce_reconstruction_error(torch.full((3, 2), 0.3, dtype=torch.float64), x)
    with pytest.raises(ValueError, match="logits must have the shape of x"):
        bce_reconstruction_error(x, torch.zeros(2, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="logits must contain only finite"):
        bce_reconstruction_error(x, torch.full((3, 2), float("inf"), dtype=torch.float64))
    with pytest.raises(ValueError, match="reduction"):
        bce_reconstruction_error(x, x, reduction=None)
    with pytest.raises(TypeError, match="x must be a numeric array"):
        bce_reconstruction_error("abc", x)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"model": "not a model"}, TypeError, "model must be an Autoencoder"),
        ({"x_train": torch.zeros(8, 3, dtype=torch.float64)}, ValueError, "x_train"),
        ({"x_train": torch.full((8, 4), float("nan"), dtype=torch.float64)}, ValueError, "x_train"),
        ({"x_test": torch.zeros(8, 5, dtype=torch.float64)}, ValueError, "x_test"),
        ({"n_epochs": 0}, ValueError, "n_epochs"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"batch_size": 2.5}, TypeError, "batch_size"),
        ({"learning_rate": 0.0}, ValueError, "learning_rate"),
        ({"learning_rate": float("nan")}, ValueError, "learning_rate"),
        ({"optimizer": "rmsprop"}, ValueError, "optimizer"),
        ({"seed": -3}, ValueError, "seed"),
        ({"seed": 1, "generator": torch.Generator()}, ValueError, "seed must be None"),
        ({"generator": 42}, TypeError, "generator"),
        ({"progress": "yes"}, TypeError, "progress"),
    ],
)
def test_training_rejects_bad_arguments(kwargs, error, match):
    arguments = {
        "model": Autoencoder((4, 2), seed=0),
        "x_train": torch.zeros(8, 4, dtype=torch.float64),
        "n_epochs": 1,
        "progress": False,
        "seed": 0,
    }
    arguments.update(kwargs)
    if "generator" in kwargs and "seed" not in kwargs:
        arguments["seed"] = None
    model = arguments.pop("model")
    x_train = arguments.pop("x_train")
    with pytest.raises(error, match=match):
        train_autoencoder(model, x_train, **arguments)


def test_training_rejects_non_binary_data_for_cross_entropy_and_broken_models():
    ae = Autoencoder((4, 2), output="sigmoid", seed=0)
    with pytest.raises(ValueError, match="x_train must be binary"):
        train_autoencoder(ae, torch.full((8, 4), 0.5, dtype=torch.float64), progress=False)
    with pytest.raises(ValueError, match="x_test must be binary"):
        train_autoencoder(
            ae,
            torch.zeros(8, 4, dtype=torch.float64),
            x_test=torch.full((2, 4), 2.0, dtype=torch.float64),
            progress=False,
        )
    with torch.no_grad():
        ae.decoder[0].bias[0] = float("nan")
    with pytest.raises(ValueError, match="decoder.0.bias must be finite"):
        train_autoencoder(ae, torch.zeros(8, 4, dtype=torch.float64), progress=False)


# ============================================================================ devices
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_training_and_pca_on_cuda():
    device = torch.device("cuda")
    x = _gaussian_data(LAMBDA, 500, seed=0).to(device)
    ae = Autoencoder((8, 2), activation="linear", seed=1, device=device)
    history = train_autoencoder(
        ae,
        x,
        n_epochs=200,
        batch_size=500,
        learning_rate=0.04,
        optimizer="sgd",
        seed=0,
        progress=False,
    )
    res = pca(x, 2)
    assert res.components.device.type == "cuda"
    assert history["train_loss"][-1] < 1.1 * res.discarded_variance.item()
    with pytest.raises(ValueError, match="generator must live on the device"):
        train_autoencoder(ae, x, n_epochs=1, generator=torch.Generator(), progress=False)
    with pytest.raises(ValueError, match="x must be on device"):
        ae.encode(torch.zeros(1, 8, dtype=torch.float64))


def test_per_point_errors_by_hand_and_loss_method():
    # squared_error and bernoulli_cross_entropy against explicit loops; the cross-entropy
    # also at logits of +-800, where the naive formula gives nan (adversarial case).
    x = torch.tensor([[1.0, 2.0], [0.0, -1.0]], dtype=torch.float64)
    x_tilde = torch.tensor([[0.0, 1.0], [0.5, 1.0]], dtype=torch.float64)
    np.testing.assert_allclose(squared_error(x, x_tilde), [2.0, 4.25], rtol=1e-15)
    bits = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    z = torch.tensor([[800.0, -800.0, 0.5], [40.0, -40.0, -2.0]], dtype=torch.float64)
    want = [
        math.log1p(math.exp(-0.5)),
        (40.0 + math.log1p(math.exp(-40.0))) * 2 + math.log1p(math.exp(-2.0)),
    ]
    np.testing.assert_allclose(bernoulli_cross_entropy(bits, z), want, rtol=1e-15)
    for output, data, per_point in (
        ("linear", torch.randn(5, 6, dtype=torch.float64), squared_error),
        ("sigmoid", _binary(5, 6, seed=1), bernoulli_cross_entropy),
    ):
        ae = Autoencoder((6, 3), output=output, seed=4)
        with torch.no_grad():
            np.testing.assert_allclose(ae.loss(data), per_point(data, ae(data)), rtol=1e-15)
            np.testing.assert_allclose(
                ae.loss(data), ae.reconstruction_error(data, reduction="none"), rtol=1e-15
            )


def test_bad_input_per_point_errors_and_loss():
    x = torch.zeros(3, 2, dtype=torch.float64)
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        squared_error(x.numpy(), x)
    with pytest.raises(TypeError, match="logits must be a floating-point tensor"):
        bernoulli_cross_entropy(x, x.long())
    with pytest.raises(ValueError, match="x_tilde must have the shape of x"):
        squared_error(x, x[:2])
    ae = Autoencoder((2, 1), seed=0)
    with pytest.raises(TypeError, match="x must be a tensor"):
        ae.loss([[0.0, 1.0]])
    with pytest.raises(ValueError, match="x must be a tensor of shape"):
        ae.loss(torch.zeros(3, 5, dtype=torch.float64))
