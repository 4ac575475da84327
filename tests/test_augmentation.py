"""Training augmentation by the world's symmetry (``Split.reflected``, ``LearnedConfig.augment``).

The QG mirror image (y -> -y, psi -> -psi) and its periodic translations
(``Split.translated``, ``LearnedConfig.shift``) are checked against the physics: the LR
model's trajectory of a mirrored state is the mirrored trajectory, and a mirrored
training pair is as consistent with its observations as the original (the same
residuals y - H(truth), negated). Then the data module: half the training samples
are mirrored, validation never, and a world without a symmetry trains unaugmented.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from bench import registry

SIZE = "tiny"


@pytest.fixture(scope="module")
def root(tiny_data):
    return tiny_data("l96", "qg")


def _mirror(q):
    return -torch.flip(q, dims=(-2,))


def _residuals(split, ds):
    """y - H(truth) of training pairs ``ds``: the observed SSH of the PV target (mapping targets are SSH)."""
    from challenges.qg_world import obs_field_map
    from data_scripts.obs import TrigInterpolator

    t = torch.as_tensor(ds["target"].values)
    field = obs_field_map(SIZE)(t) if t.ndim == 4 else t
    L, (ny, nx) = float(split.geometry.length[0]), split.geometry.shape
    interp = TrigInterpolator(ds["obs_x"].values, ds["obs_y"].values, nx, ny, L, L)
    return np.asarray(ds["obs_value"].values) - interp.forward(field).numpy()


@pytest.mark.parametrize("regime", [{}, {"beta": 1e-11, "delta": 0.1, "rek": 7e-8}], ids=["eddy", "jet"])
def test_the_qg_model_commutes_with_the_north_south_mirror(regime):
    """step(mirror(q)) = mirror(step(q)) to round-off, for a state without Nyquist modes (the model's
    filter removes them every step); x -> -x is no symmetry (eastward mean flow), so the check can fail."""
    from data_scripts.qg import QGModel

    m = QGModel(nx=32, **regime)
    q = torch.randn(3, 2, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 1e-6
    qh = torch.fft.rfft2(q)
    qh[..., 16, :] = 0
    qh[..., :, 16] = 0
    q = torch.fft.irfft2(qh, s=(32, 32))
    stepped = m.step(q, 50)
    ref = _mirror(stepped)
    assert float((m.step(_mirror(q), 50) - ref).abs().max() / ref.abs().max()) < 1e-12
    flip_x = -torch.flip(q, dims=(-1,))
    other = -torch.flip(stepped, dims=(-1,))
    assert float((m.step(flip_x, 50) - other).abs().max() / other.abs().max()) > 1e-3


@pytest.mark.parametrize("challenge", ["qg-da", "qg-map"])
def test_a_mirrored_pair_fits_its_observations_as_the_original_does(root, challenge):
    """The residuals y - H(truth) of the mirrored samples are the originals' negated: the mirrored
    positions sample the mirrored field, so the pair is a consistent OSSE sample of another solution."""
    split = registry.get_challenge(challenge).split(SIZE, "train", root)
    pairs = split.training_pairs().isel(sample=slice(0, 6)).load()
    which = np.array([True, False, True, True, False, True])
    mirrored = split.reflected(pairs, which)
    twice = split.reflected(mirrored, which)  # an involution (obs_y to round-off: L - (L - y))
    assert all(np.allclose(twice[k].values, pairs[k].values, rtol=1e-12, atol=1e-12) for k in pairs.data_vars)
    r0, r1 = _residuals(split, pairs), _residuals(split, mirrored)
    valid = np.asarray(pairs["obs_valid"].values) if "obs_valid" in pairs else np.isfinite(r0)
    assert np.allclose(r1[which][valid[which]], -r0[which][valid[which]], atol=1e-9)
    assert np.array_equal(r1[~which][valid[~which]], r0[~which][valid[~which]])
    assert np.array_equal(mirrored["obs_x"].values, pairs["obs_x"].values)


def test_the_data_module_mirrors_half_the_training_samples_and_no_validation_sample(root):
    from baselines.learned.data import PairsDataModule

    ch = registry.get_challenge("qg-da")
    train, val = ch.split(SIZE, "train", root), ch.split(SIZE, "val", root)
    plain = PairsDataModule(train, val, 16, seed=0)
    aug = PairsDataModule(train, val, 16, seed=0, augment=True)
    assert aug.describe()["augmentation"] == train.symmetry and plain.describe()["augmentation"] is None
    idx = torch.arange(min(64, aug.train_pairs.sizes["sample"]))
    _, t_plain = plain.batch(idx, "cpu", train=True)
    _, t_aug = aug.batch(idx, "cpu", train=True)
    same = [torch.equal(a, b) for a, b in zip(t_plain, t_aug)]
    mirrored = [torch.equal(_mirror(a), b) for a, b in zip(t_plain, t_aug)]
    assert all(s or m for s, m in zip(same, mirrored)) and 0.25 < np.mean(mirrored) < 0.75
    _, v_plain = plain.batch(idx[:8], "cpu", train=False)
    _, v_aug = aug.batch(idx[:8], "cpu", train=False)
    assert torch.equal(v_plain, v_aug)
    l96 = registry.get_challenge("l96-da")
    none = PairsDataModule(l96.split(SIZE, "train", root), l96.split(SIZE, "val", root), 16, seed=0, augment=True)
    assert none.describe()["augmentation"] is None


def test_the_qg_model_commutes_with_periodic_shifts():
    """step(roll(q)) = roll(step(q)) to round-off: the doubly periodic world is homogeneous."""
    from data_scripts.qg import QGModel

    m = QGModel(nx=32)
    q = torch.randn(2, 2, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 1e-6
    shift = lambda a: torch.roll(a, (5, -11), dims=(-2, -1))  # noqa: E731
    ref = shift(m.step(q, 50))
    assert float((m.step(shift(q), 50) - ref).abs().max() / ref.abs().max()) < 1e-12


@pytest.mark.parametrize("challenge", ["qg-da", "qg-map"])
def test_a_translated_pair_fits_its_observations_as_the_original_does(root, challenge):
    """The residuals y - H(truth) of translated samples equal the originals': the moved positions sample
    the rolled field where the original positions sampled the original field."""
    split = registry.get_challenge(challenge).split(SIZE, "train", root)
    pairs = split.training_pairs().isel(sample=slice(0, 4)).load()
    shifts = np.array([[0, 0], [3, 0], [0, 7], [5, 13]])
    moved = split.translated(pairs, shifts)
    back = split.translated(moved, -shifts)  # the inverse shift
    assert np.array_equal(back["target"].values, pairs["target"].values)
    assert np.allclose(back["obs_x"].values, pairs["obs_x"].values, atol=1e-9)
    r0, r1 = _residuals(split, pairs), _residuals(split, moved)
    valid = np.asarray(pairs["obs_valid"].values) if "obs_valid" in pairs else np.isfinite(r0)
    assert np.allclose(r1[valid], r0[valid], atol=1e-9)
    t0, t1 = pairs["target"].values, moved["target"].values
    assert np.array_equal(t1[3], np.roll(t0[3], (5, 13), axis=(-2, -1))) and not np.array_equal(t1[3], t0[3])


def test_the_data_module_shifts_training_samples_only_when_asked(root):
    from baselines.learned.data import PairsDataModule

    ch = registry.get_challenge("qg-map")
    train, val = ch.split(SIZE, "train", root), ch.split(SIZE, "val", root)
    plain = PairsDataModule(train, val, 8, seed=0, window=5)
    moved = PairsDataModule(train, val, 8, seed=0, window=5, shift=True)
    assert moved.describe()["translation"] == train.translations and "translation" not in plain.describe()
    idx = torch.arange(8)
    _, t_plain = plain.batch(idx, "cpu", train=True)
    _, t_moved = moved.batch(idx, "cpu", train=True)
    rolled = [any(torch.equal(torch.roll(a, (i, j), dims=(-2, -1)), b) for i in range(a.shape[-2])
                  for j in range(a.shape[-1])) for a, b in zip(t_plain, t_moved)]
    assert all(rolled) and not all(torch.equal(a, b) for a, b in zip(t_plain, t_moved))
    _, v_plain = plain.batch(idx, "cpu", train=False)
    _, v_moved = moved.batch(idx, "cpu", train=False)
    assert torch.equal(v_plain, v_moved)
    l96 = registry.get_challenge("l96-da")
    none = PairsDataModule(l96.split(SIZE, "train", root), l96.split(SIZE, "val", root), 16, seed=0, shift=True)
    assert "translation" not in none.describe()
