"""Pseudo-likelihood of binary RBMs: brute-force conditionals, scikit-learn's formula, training."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from memory_helpers import assert_fits

from genphys import pseudolikelihood as pl
from genphys.enumeration import binary_states
from genphys.rbm import log_partition_exact


def _unnormalised_log_p(rbm, x):
    """log sum_h e^{-E(x, h)} by enumerating h, independently of the free-energy formula."""
    h = binary_states(rbm.n_hidden)  # (S, N)
    B, S = x.shape[0], h.shape[0]
    e = rbm.energy(x.repeat_interleave(S, dim=0), h.repeat(B, 1)).reshape(B, S)
    return torch.logsumexp(-e, dim=1)


def test_conditionals_match_their_definition(make_rbm, make_binary_data):
    rbm = make_rbm(5, 3, scale=1.5, seed=0)
    x = make_binary_data(8, 5, seed=1)
    with torch.no_grad():
        mine = pl.conditional_log_probs(rbm, x)  # (B, M)
        for i in range(5):
            x1, x0 = x.clone(), x.clone()
            x1[:, i], x0[:, i] = 1.0, 0.0
            l1, l0 = _unnormalised_log_p(rbm, x1), _unnormalised_log_p(rbm, x0)
            own = torch.where(x[:, i] == 1, l1, l0)
            brute = own - torch.logaddexp(l1, l0)  # p(x_i | x_-i) = p(x) / (p(x0) + p(x1))
            torch.testing.assert_close(mine[:, i], brute)
        torch.testing.assert_close(pl.log_pseudo_likelihood(rbm, x), mine.sum(1))


def test_pseudo_likelihood_of_an_independent_model_is_the_likelihood(make_binary_data):
    # With W = 0 the sites are independent and p(x_i | x_-i) = p(x_i): PL = likelihood.
    from genphys.rbm import BernoulliRBM, log_likelihood_exact

    g = torch.Generator().manual_seed(0)
    a = torch.randn(6, generator=g, dtype=torch.float64)
    rbm = BernoulliRBM.from_parameters(
        torch.zeros(6, 2, dtype=torch.float64), a, torch.ones(2, dtype=torch.float64)
    )
    x = make_binary_data(10, 6, seed=2)
    with torch.no_grad():
        torch.testing.assert_close(
            pl.log_pseudo_likelihood(rbm, x).mean(), log_likelihood_exact(rbm, x)
        )


def test_stochastic_version_averages_to_the_exact_one(make_rbm, make_binary_data):
    rbm = make_rbm(6, 3, seed=3)
    x = make_binary_data(5, 6, seed=4)
    with torch.no_grad():
        every_site = torch.stack(
            [
                pl.stochastic_log_pseudo_likelihood(rbm, x, sites=torch.full((5,), i))
                for i in range(6)
            ]
        )
        torch.testing.assert_close(every_site.mean(0), pl.log_pseudo_likelihood(rbm, x))
        # random sites: the mean of 1500 draws is within 5 standard errors of the exact value
        g = torch.Generator().manual_seed(0)
        draws = torch.stack(
            [pl.stochastic_log_pseudo_likelihood(rbm, x, generator=g) for _ in range(1500)]
        )  # (R, B)
    se = draws.std(0) / math.sqrt(draws.shape[0])
    gap = (draws.mean(0) - pl.log_pseudo_likelihood(rbm, x).detach()).abs()
    assert bool((gap < 5 * se).all()), (gap, se)


def test_stochastic_version_is_scikit_learns_score_samples():
    from sklearn.neural_network import BernoulliRBM as SkRBM

    from genphys.data import load_digits_binary
    from genphys.rbm import BernoulliRBM

    x = load_digits_binary().x_train[:300].numpy()
    sk = SkRBM(n_components=8, n_iter=3, learning_rate=0.05, random_state=7).fit(x)
    ours = BernoulliRBM.from_parameters(
        sk.components_.T.copy(), sk.intercept_visible_.copy(), sk.intercept_hidden_.copy()
    )
    # score_samples draws its sites with np.random.RandomState(random_state).randint
    sites = np.random.RandomState(7).randint(0, x.shape[1], x.shape[0])
    with torch.no_grad():
        mine = pl.stochastic_log_pseudo_likelihood(ours, x, sites=torch.as_tensor(sites))
    np.testing.assert_allclose(mine.numpy(), sk.score_samples(x), rtol=1e-12, atol=1e-10)


def test_gradient_matches_float64_finite_differences(make_rbm, make_binary_data):
    rbm = make_rbm(4, 3, seed=5)
    x = make_binary_data(7, 4, seed=6)
    objective = pl.log_pseudo_likelihood(rbm, x).mean()
    grads = torch.autograd.grad(objective, [rbm.W, rbm.a, rbm.b])
    eps = 1e-6
    for name, p, grad in zip("Wab", (rbm.W, rbm.a, rbm.b), grads, strict=True):
        flat = p.data.view(-1)
        for i in range(flat.numel()):
            old = flat[i].item()
            with torch.no_grad():
                flat[i] = old + eps
                up = pl.log_pseudo_likelihood(rbm, x).mean().item()
                flat[i] = old - eps
                down = pl.log_pseudo_likelihood(rbm, x).mean().item()
                flat[i] = old
            assert abs(grad.view(-1)[i].item() - (up - down) / (2 * eps)) < 1e-8, (name, i)


def _exact_log_p(rbm):
    states = binary_states(rbm.n_visible)
    return states, -rbm.free_energy(states) - log_partition_exact(rbm)


def test_training_by_pseudo_likelihood_approaches_the_data_distribution(make_rbm):
    # Data from a known 6 x 2 RBM (exact samples by enumeration); the PL fit must cut the KL
    # divergence from the truth to a small fraction of that of the initial model.
    truth = make_rbm(6, 2, scale=1.5, seed=7)
    with torch.no_grad():
        states, log_p = _exact_log_p(truth)
        g = torch.Generator().manual_seed(0)
        x = states[torch.multinomial(log_p.exp(), 4000, replacement=True, generator=g)]
    from genphys.rbm import BernoulliRBM

    model = BernoulliRBM(6, 2, seed=1, weight_scale=0.1)

    def kl():
        with torch.no_grad():
            return float((log_p.exp() * (log_p - _exact_log_p(model)[1])).sum())

    before = kl()
    history = pl.train_pseudo_likelihood(
        model, x, n_epochs=15, batch_size=500, learning_rate=0.05, test_data=x[:500], seed=0
    )
    after = kl()
    assert np.all(np.isfinite(history["loss"])) and "test_log_likelihood" in history
    # 4000 samples of 64 states: the sampling noise of a fit is KL ~ (64 - 1) / (2 * 4000)
    # ~ 0.008 for a saturated model; the initial model is at about 0.5 nats.
    assert after < 0.1 * before and after < 0.05, (before, after)


def test_bad_input_raises_clearly(make_rbm, make_binary_data):
    rbm = make_rbm(4, 2)
    x = make_binary_data(3, 4)
    with pytest.raises(ValueError, match="x must be binary"):
        pl.log_pseudo_likelihood(rbm, x + 0.5)
    with pytest.raises(ValueError, match="sites must lie in"):
        pl.stochastic_log_pseudo_likelihood(rbm, x, sites=torch.tensor([0, 1, 4]))
    with pytest.raises(ValueError, match="sites must be an integer tensor of shape"):
        pl.stochastic_log_pseudo_likelihood(rbm, x, sites=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="seed and generator must be None"):
        pl.stochastic_log_pseudo_likelihood(rbm, x, sites=torch.tensor([0, 1, 2]), seed=0)
    with pytest.raises(TypeError, match="seed must be an integer"):
        pl.stochastic_log_pseudo_likelihood(rbm, x)
    with pytest.raises(TypeError, match="rbm must be a BernoulliRBM"):
        pl.log_pseudo_likelihood("rbm", x)
    with pytest.raises(ValueError, match="learning_rate must be a finite number"):
        pl.train_pseudo_likelihood(rbm, x, n_epochs=1, learning_rate=-1.0, seed=0)


def test_log_pseudo_likelihood_stays_within_a_memory_cap():
    # 784 x 100 RBM, 60 rows, no gradients: the (rows * M, M) flipped copies and their
    # (rows * M, N) fields were ~14 MB per row; blocks of CHUNK_ELEMENTS entries need ~50 MB.
    assert_fits(
        """
        from genphys import pseudolikelihood as pl
        from genphys.rbm import BernoulliRBM
        g = torch.Generator().manual_seed(0)
        f64 = torch.float64
        rbm = BernoulliRBM.from_parameters(0.01 * torch.randn(784, 100, generator=g, dtype=f64),
                                           torch.zeros(784, dtype=f64), torch.zeros(100, dtype=f64))
        x = torch.bernoulli(torch.full((60, 784), 0.5, dtype=f64), generator=g)
        with torch.no_grad():
            assert pl.log_pseudo_likelihood(rbm, x).shape == (60,)
        """,
        extra_mb=300,
    )


def test_conditionals_equal_the_flipped_free_energies_by_definition(make_rbm):
    # log p(x_i | x_-i) = log sigmoid(F(x with i flipped) - F(x)), each flip written out
    rbm = make_rbm(6, 4, seed=3)
    x = binary_states(6)[::5]
    got = pl.conditional_log_probs(rbm, x)
    for i in range(6):
        flipped = x.clone()
        flipped[:, i] = 1 - flipped[:, i]
        want = torch.nn.functional.logsigmoid(rbm.free_energy(flipped) - rbm.free_energy(x))
        torch.testing.assert_close(got[:, i], want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("sites", ["01", [0.5, 1.5], [True, False], [[0], [1]]])
def test_sites_that_are_not_integer_indices_are_named(make_rbm, sites):
    rbm = make_rbm(4, 3, seed=0)
    x = binary_states(4)[:2]
    with pytest.raises(
        (TypeError, ValueError), match=r"sites must be an integer tensor of shape \(2,\)"
    ):
        pl.stochastic_log_pseudo_likelihood(rbm, x, sites=sites)
