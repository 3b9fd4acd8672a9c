"""The projects' goals (``genphys.exercises._goals``): only doing the project passes.

Every shortcut a student could take instead of the project is tried here and must be
rejected: returning the training data or exact samples, too few sampler steps, made-up or
autocorrelation-blind error bars, a short burn-in, parameters trained before the check, the
library's own trainers and samplers, and ways around the watch (a copy of a refused
function's code, a worker thread, removing the profile hook). The reference pipelines pass
on hidden draws (``test_exercises.py`` runs them through ``show_solution``).
"""

from __future__ import annotations

import inspect
import math
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from genphys import diffusion_samplers, ising, langevin, mixtures, training
from genphys.exercises import _goals, checks
from genphys.exercises import project_ddpm as _DDPM
from genphys.exercises import project_ising_mc as _ISING
from genphys.exercises import project_langevin as _LANGEVIN
from genphys.exercises import project_rbm as _RBM
from genphys.exercises import project_vae as _VAE_PROJECT
from genphys.ising import energy
from genphys.mixtures import GaussianMixture

F64 = torch.float64


def _rejected(feedback, *words):
    assert feedback.status == "incorrect", feedback
    for word in words:
        assert word in feedback.message, feedback.message


# ------------------------------------------------------------------ the machinery
def test_hidden_draws_differ_between_checks_and_replay_with_a_seed():
    seen = []

    def spy(x0, n, seed):
        seen.append((x0.clone(), seed))
        return None  # "did you forget return?": the run stops before the judge

    goal = _DDPM.TRAIN_AND_SAMPLE
    goal.check(spy)
    goal.check(spy)
    goal.check(spy, seed=7)
    goal.check(spy, seed=7)
    (a, sa), (b, sb), (c, sc), (d, sd) = seen
    assert not torch.equal(a, b) and sa != sb  # fresh hidden draws each time
    assert torch.equal(c, d) and sc == sd  # the seed a failure names replays them


def test_moved_mixture_keeps_the_shape_and_moves_the_mixture():
    g = torch.Generator().manual_seed(0)
    moved = _goals.moved_mixture(_DDPM.MIXTURE, g)
    # a rotation keeps the distances between the means; the weights are a permutation
    d0 = torch.cdist(_DDPM.MIXTURE.means, _DDPM.MIXTURE.means)
    d1 = torch.cdist(moved.means, moved.means)
    torch.testing.assert_close(d0, d1)
    assert sorted(moved.weights.tolist()) == pytest.approx(sorted(_DDPM.MIXTURE.weights.tolist()))
    assert not torch.allclose(moved.means, _DDPM.MIXTURE.means)


def test_memorisation_flags_copies_and_jitter_but_not_fresh_samples():
    mixture = _DDPM.MIXTURE
    train = mixture.sample(4000, seed=1)
    fresh = mixture.sample(2000, seed=2)
    assert _goals.memorisation(mixture.sample(2000, seed=3), train, fresh) is None
    assert "copies" in _goals.memorisation(train[:2000], train, fresh)
    jitter = train[:2000] + 0.002 * torch.randn(2000, 2, generator=torch.Generator().manual_seed(4))
    assert "close" in _goals.memorisation(jitter.to(F64), train, fresh)
    # the nearest-neighbour distances are those of a brute-force double loop
    small, data = train[:7], fresh[:11]
    brute = torch.tensor([min(float((p - q).norm()) for q in data) for p in small], dtype=F64)
    torch.testing.assert_close(_goals.nearest_distances(small, data, chunk=3), brute)


def test_watch_sees_copies_threads_and_its_own_removal():
    goal = _LANGEVIN.SAMPLE_MIXTURE

    # a copy of a refused function made from its source is recognised by its content
    namespace = dict(vars(mixtures))
    exec(textwrap.dedent(inspect.getsource(GaussianMixture.sample)), namespace)
    copied = namespace["sample"]
    assert copied.__code__ is not GaussianMixture.sample.__code__

    def with_copy(log_prob, n, seed):
        return copied(_LANGEVIN.MIXTURE, n, seed=seed)

    _rejected(goal.check(with_copy, strict=True), "GaussianMixture.sample")

    # a call from a worker thread started by the student's function
    def in_thread(log_prob, n, seed):
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(_LANGEVIN.MIXTURE.sample, n, seed=seed).result()

    _rejected(goal.check(in_thread, strict=True), "GaussianMixture.sample")

    # removing the watcher before the shortcut, or reading it to reinstall it later
    def unhook(log_prob, n, seed):
        sys.setprofile(None)
        return _LANGEVIN.MIXTURE.sample(n, seed=seed)

    _rejected(goal.check(unhook, strict=True), "profile hook")

    def unhook_threads(log_prob, n, seed):
        threading.setprofile(None)  # then a thread would run unwatched
        return torch.zeros(n, 2, dtype=F64)

    _rejected(goal.check(unhook_threads, strict=True), "profile hook")
    assert sys.getprofile() is None  # the check leaves no hook behind


# ------------------------------------------------------------------------- DDPM
def training_step(model, optimizer, x0, t, eps, betas):  # the "student's" step, never called
    raise NotImplementedError


def test_ddpm_goal_rejects_a_model_not_trained_with_the_students_step():
    # a kernel density estimate of the training data (resampled points plus noise of width
    # 0.15) is close to the mixture and no copy of the data, but nothing was trained
    def kde(x0, n, seed):
        g = torch.Generator().manual_seed(seed)
        rows = torch.randint(0, len(x0), (n,), generator=g)
        return x0[rows].double() + 0.15 * torch.randn(n, 2, generator=g, dtype=F64)

    _rejected(_DDPM.TRAIN_AND_SAMPLE.check(kde), "training_step ran 0 times")
    (_, n, _), context = _DDPM._train_arguments(torch.Generator().manual_seed(5))
    steps = [None] * 640
    passed, message = _DDPM.judge_trained_samples(context[0].sample(n, seed=1), context, steps)
    assert passed, message


def test_ddpm_goal_rejects_the_training_data_and_exact_samples():
    goal = _DDPM.TRAIN_AND_SAMPLE
    _rejected(goal.check(lambda x0, n, seed: x0[:n].double(), strict=True), "copies")
    resampled = lambda x0, n, seed: x0[torch.randint(0, len(x0), (n,))].double()
    _rejected(goal.check(resampled, strict=True), "copies")
    _rejected(
        goal.check(lambda x0, n, seed: _DDPM.MIXTURE.sample(n, seed=seed), strict=True),
        "GaussianMixture.sample",
    )

    # exact samples of the page's mixture built by hand: the training data are moved
    def by_hand(x0, n, seed):
        g = torch.Generator().manual_seed(seed)
        k = torch.multinomial(_DDPM.MIXTURE.weights, n, replacement=True, generator=g)
        eps = torch.randn(n, 2, generator=g, dtype=F64)
        return _DDPM.MIXTURE.means[k] + _DDPM.MIXTURE.stds[k, None] * eps

    _rejected(goal.check(by_hand, strict=True, seed=3), "above the target")


def test_ddpm_goal_rejects_the_library_sampler_and_explains_divergence_and_dtypes():
    goal = _DDPM.TRAIN_AND_SAMPLE

    def library(x0, n, seed):
        x_T = torch.randn(n, 2, dtype=F64)
        return diffusion_samplers.ddpm_sample(lambda x, t: 0 * x, _DDPM.BETAS, x_T=x_T, seed=1)

    _rejected(goal.check(library, strict=True), "diffusion_samplers.ddpm_sample")
    nan = lambda x0, n, seed: torch.full((n, 2), float("nan"), dtype=F64)
    _rejected(goal.check(nan), "training diverged")
    feedback = goal.check(lambda x0, n, seed: x0.double() @ torch.eye(2))
    assert feedback.status == "error" and "x0.float()" in feedback.message
    one = _DDPM.MIXTURE.means[0] + 0.4 * torch.randn(4000, 2, dtype=F64)
    _rejected(goal.check(lambda x0, n, seed: one), "above the target")
    assert goal.check(lambda x0, n, seed: one[:10]).status == "error"
    no_noise = _DDPM.DDPM_SAMPLE.mistakes[0].answer
    assert _DDPM._sample_floor_test(no_noise, 4) is not None
    assert _DDPM._sample_floor_test(_DDPM.ddpm_sample, 4) is None


def test_ddpm_goal_judge_accepts_fresh_samples_of_the_hidden_mixture():
    # the judge alone, on the context the goal draws: exact samples of the hidden mixture
    # that are not the training points pass (the JSD floor of exact samples is 0.011)
    (x0, n, _), context = _DDPM._train_arguments(torch.Generator().manual_seed(5))
    mixture = context[0]
    passed, message = _DDPM.judge_trained_samples(mixture.sample(n, seed=6), context)
    assert passed, message
    assert x0.dtype == torch.float32 and x0.shape == (8000, 2)


# --------------------------------------------------------------------- Langevin
def _mala_pipeline(n_steps):
    def sample_mixture(log_prob, n_samples, seed):
        g = torch.Generator().manual_seed(seed)
        x = 3 * torch.rand(n_samples, 2, generator=g, dtype=F64) - 1.5
        for _ in range(n_steps):
            x, _ = _LANGEVIN.mala_step(x, log_prob, 0.15, g)
        return x

    return sample_mixture


def test_langevin_goal_rejects_exact_samples_and_short_chains():
    goal = _LANGEVIN.SAMPLE_MIXTURE
    exact = lambda log_prob, n, seed: _LANGEVIN.MIXTURE.sample(n, seed=seed)
    _rejected(goal.check(exact, strict=True), "GaussianMixture.sample")
    _rejected(goal.check(_mala_pipeline(5)), "evaluated log_prob at 40000 points")

    def library(log_prob, n, seed):
        state = langevin.init(log_prob, torch.zeros(n, 2, dtype=F64))
        return langevin.ula_step(state, log_prob, 0.1, torch.Generator().manual_seed(0)).position

    _rejected(goal.check(library, strict=True), "langevin.ula_step")


def test_langevin_goal_judge_uses_the_hidden_target():
    (log_prob, n, _), (mixture, evaluations) = _LANGEVIN._mixture_arguments(
        torch.Generator().manual_seed(2)
    )
    x = torch.randn(9, 2, dtype=F64)
    torch.testing.assert_close(log_prob(x), mixture.log_prob(x))  # the density handed over
    evaluations[0] = 300 * n
    assert _LANGEVIN.judge_mixture_samples(mixture.sample(n, seed=1), (mixture, evaluations))[0]
    wide = mixture.mean() + 1.3 * (mixture.sample(n, seed=1) - mixture.mean())
    assert not _LANGEVIN.judge_mixture_samples(wide, (mixture, evaluations))[0]
    passed, message = _LANGEVIN.judge_mixture_samples(mixture.sample(n, seed=1), (mixture, [0]))
    assert not passed and "Run all 300 steps" in message


def test_langevin_goal_rejects_ula_in_place_of_mala():
    # ULA's O(eta) bias (the narrowest component 43 % too wide at eta = 0.15) is above the
    # limit of 5 SD of exact samples
    def ula_pipeline(log_prob, n_samples, seed):
        g = torch.Generator().manual_seed(seed)
        x = 3 * torch.rand(n_samples, 2, generator=g, dtype=F64) - 1.5
        for _ in range(300):
            x = _LANGEVIN.ula_step(x, log_prob, 0.15, g)
        return x

    assert _LANGEVIN.SAMPLE_MIXTURE.check(ula_pipeline, seed=1).status == "incorrect"


# ------------------------------------------------------------------------ Ising
metropolis_sweep = _ISING.metropolis_sweep  # the "student's" sweep, counted by the goal


def _study(hot=False, n_burn=100, iid=False, n_chains=500, n_measure=400):
    def ising_study(temperatures, seed):
        g = torch.Generator().manual_seed(seed)
        out = {}
        for T in temperatures:
            if hot:
                s = (2 * torch.randint(0, 2, (n_chains, 4, 4), generator=g) - 1).to(F64)
            else:
                s = torch.ones(n_chains, 4, 4, dtype=F64)
            for _ in range(n_burn):
                s = metropolis_sweep(s, 1 / T, g)
            e = torch.empty(n_chains, n_measure, dtype=F64)
            for k in range(n_measure):
                s = metropolis_sweep(s, 1 / T, g)
                e[:, k] = energy(s) / 16
            m, err = _ISING.mean_and_error(e)
            if iid:
                err = e.std() / math.sqrt(e.numel())
            c, c_err = _ISING.specific_heat_jackknife(e, T, 16, 20)
            out[T] = (e, float(m), float(err), float(c), float(c_err))
        return out

    return ising_study


@pytest.fixture(scope="module")
def reference_study():
    return _ISING.ising_study(_ISING.TEMPERATURES, 1)  # about 10 s on one core


def test_ising_goal_recomputes_error_bars_from_the_series(reference_study):
    passed, message = _ISING.judge_ising_study(reference_study)
    assert passed, message
    # error bars that ignore the autocorrelation (near T_c, tau_int of the energy is a few
    # sweeps, so they are about 1.5 times too small)
    e = reference_study[2.25][0]
    iid = {
        T: (s, m, float(s.std()) / math.sqrt(s.numel()), c, dc)
        for T, (s, m, _, c, dc) in reference_study.items()
    }
    passed, message = _ISING.judge_ising_study(iid)
    assert not passed and "autocorrelation" in message, message
    # made-up numbers next to a true series: the check uses its own estimates
    made_up = {T: (s, m + 0.01, de, c, dc) for T, (s, m, de, c, dc) in reference_study.items()}
    assert "is not the" in _ISING.judge_ising_study(made_up)[1]
    # a series that is not energies of a 4 x 4 lattice is not judged
    fake = {T: (s + 0.01, m, de, c, dc) for T, (s, m, de, c, dc) in reference_study.items()}
    with pytest.raises(ValueError, match="multiples of 1/4"):
        _ISING.judge_ising_study(fake)
    # chains that drift: the first quarter of every chain shifted by a quarter level
    drifting = {T: (s.clone(), m, de, c, dc) for T, (s, m, de, c, dc) in reference_study.items()}
    drifting[2.25][0][:, :100] += 0.25
    assert "not in equilibrium" in _ISING.judge_ising_study(drifting)[1]
    # a shifted series is many error bars from the exact value
    shifted = {T: (s.clone(), m, de, c, dc) for T, (s, m, de, c, dc) in reference_study.items()}
    shifted[3.0][0][:] += 0.25
    assert "error bars from the exact value" in _ISING.judge_ising_study(shifted)[1]
    assert e.shape == (500, 400)


def test_ising_goal_counts_burn_in_sweeps(reference_study):
    n = len(_ISING.TEMPERATURES)
    enough = [500] * (n * 500)
    assert _ISING.judge_ising_study(reference_study, _ISING.TEMPERATURES, enough)[0]
    short = [500] * (n * 405)  # 5 burn-in sweeps per temperature
    passed, message = _ISING.judge_ising_study(reference_study, _ISING.TEMPERATURES, short)
    assert not passed and "Burn in for 100 sweeps" in message
    tiny = [500] * (n * 400) + [1] * (n * 100)  # the burn-in on one chain does not count
    assert not _ISING.judge_ising_study(reference_study, _ISING.TEMPERATURES, tiny)[0]


def test_ising_goal_rejects_exact_values_and_a_short_hot_start():
    goal = _ISING.ISING_STUDY

    def exact(temperatures, seed):
        return {T: ising.exact_observables(4, T)["energy_per_spin"] for T in temperatures}

    _rejected(goal.check(exact, strict=False), "exact_observables")
    # the library's sampler
    _rejected(
        goal.check(lambda temperatures, seed: ising.sample(4, 2.0, 5, seed=seed), strict=False),
        "ising.sample",
    )
    # a hot start with 5 burn-in sweeps: counted by the calls of the student's sweep
    # (a short run of 40 chains and 40 measured sweeps: the count fails first)
    feedback = goal.check(_study(hot=True, n_burn=5, n_chains=40, n_measure=40))
    _rejected(feedback, "Burn in for 100 sweeps")

    # without a sweep of its own in the namespace, the check cannot count the work
    def no_sweep(temperatures, seed):
        return {T: None for T in temperatures}

    bare = type(no_sweep)(no_sweep.__code__, {"__builtins__": __builtins__})
    _rejected(goal.check(bare), "define `metropolis_sweep`")


def test_ising_goal_refuses_exact_samples():
    from genphys import thermodynamics

    def exact_samples(temperatures, seed):
        g = torch.Generator().manual_seed(seed)
        return {
            T: thermodynamics.sample_boltzmann_exact(4, T, 10, generator=g) for T in temperatures
        }

    _rejected(_ISING.ISING_STUDY.check(exact_samples), "sample_boltzmann_exact")


def test_a_step_written_like_the_reference_is_not_mistaken_for_it():
    """A student's own two-line step may equal the reference's: the goal refuses the reference
    function itself, and copies of the whole study, not a step the student wrote."""
    import inspect
    import sys

    from genphys.exercises import _goals

    goal = _ISING.ISING_STUDY
    codes, _ = goal._refused(True)
    watch = _goals._Watch(codes, goal._steps())

    def rebuilt(function):
        namespace = dict(vars(_ISING))
        exec(inspect.getsource(function), namespace)
        return namespace[function.__name__]

    mine = rebuilt(_ISING.mean_and_error)  # the student wrote the same two lines
    series = torch.randn(4, 200, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    sys.setprofile(watch)
    try:
        mine(series)
    finally:
        sys.setprofile(None)
    assert watch.hit is None
    # a copy of the whole reference study is still recognised by its content
    assert _goals._content(rebuilt(_ISING.ising_study).__code__) in watch.contents


@pytest.mark.slow
def test_ising_goal_rejects_autocorrelation_blind_error_bars_end_to_end():
    _rejected(_ISING.ISING_STUDY.check(_study(iid=True), seed=2), "autocorrelation")


# -------------------------------------------------------------------- RBM and VAE
def test_rbm_goal_rejects_parameters_trained_before_the_check():
    # trained on the images in their usual order (as a student would, in an earlier cell):
    # the check's images have their pixels in a hidden order
    x = _RBM._digits().x_train
    W, a, b = _RBM.train_rbm(x, _RBM.N_HIDDEN, 0)
    assert _RBM.judge_trained_rbm((W, a, b))[0]  # they do reach the goal on the usual order
    _rejected(_RBM.TRAIN_RBM.check(lambda x_train, n, seed: (W, a, b), strict=True), "hidden order")
    # the same parameters with their rows permuted like the pixels pass: the order is all
    # that differs
    (x_hidden, _, _), order = _RBM._train_arguments(torch.Generator().manual_seed(3))
    # the same images (in a hidden order of rows too) with their pixels in the hidden order
    assert x_hidden.shape == x.shape and torch.equal(x_hidden.sum(0), x[:, order].sum(0))
    assert _RBM.judge_trained_rbm((W[order], a[order], b), order)[0]


def test_rbm_and_vae_goals_refuse_the_library_trainers():
    def library_rbm(x_train, n_hidden, seed):
        from genphys import BernoulliRBM

        rbm = BernoulliRBM(64, n_hidden, seed=seed)
        training.train_rbm(rbm, x_train[:100], n_epochs=1, seed=seed)
        return rbm.W, rbm.a, rbm.b

    feedback = _RBM.TRAIN_RBM.check(library_rbm, strict=True)
    _rejected(feedback, "genphys.training.", "your own loop")

    def library_gibbs(x_train, n_hidden, seed):
        from genphys import BernoulliRBM, mcmc

        rbm = BernoulliRBM(64, n_hidden, seed=seed)
        mcmc.gibbs_chain(rbm, x_train[:4], 1, generator=torch.Generator().manual_seed(0))
        return rbm.W, rbm.a, rbm.b

    _rejected(_RBM.TRAIN_RBM.check(library_gibbs, strict=True), "gibbs_chain")

    def library_vae(x_train, seed):
        from genphys.vae import VAE, train_vae

        model = VAE(64, 8, (16,), seed=seed, dtype=torch.float32)
        train_vae(model, x_train[:64], n_epochs=1, seed=seed)
        return model

    _rejected(_VAE_PROJECT.TRAIN_VAE.check(library_vae, strict=True), "genphys.vae.train_vae")


def test_vae_goal_judges_on_the_hidden_pixel_order():
    from genphys.vae import VAE

    goal = _VAE_PROJECT.TRAIN_VAE
    feedback = goal.check(lambda x, seed: VAE(64, 8, (128,), seed=seed, dtype=torch.float32))
    assert feedback.status == "incorrect" and "falls short" in feedback.message
    assert goal.check(lambda x, seed: "a model").status == "error"
    (_, _), order = _VAE_PROJECT._train_arguments(torch.Generator().manual_seed(1))
    assert sorted(order.tolist()) == list(range(64)) and not torch.equal(order, torch.arange(64))


def test_goal_checks_through_the_page_interface_name_the_seed():
    def sample_mixture(log_prob, n_samples, seed):  # five steps of a ULA of its own
        g = torch.Generator().manual_seed(seed)
        x = torch.zeros(n_samples, 2, dtype=F64)
        for _ in range(5):
            x = x.requires_grad_(True)
            grad = torch.autograd.grad(log_prob(x).sum(), x)[0]
            x = (x + 0.1 * grad + math.sqrt(0.2) * torch.randn(x.shape, generator=g)).detach()
        return x

    feedback = checks("project_langevin").sample_mixture(sample_mixture, seed=11)
    assert "seed=11" in feedback.message and "Run all 300 steps" in feedback.message
