"""Dataset configurations: one entry per (world, size).

Every number that decides a dataset's bytes lives here, and the whole entry
is written to the dataset's ``manifest.json``. Sizes: ``tiny`` (CI, seconds),
``small`` (the default: a laptop or 2 CPU cores, minutes), ``full`` (one GPU).

Splits use disjoint seeds: trajectory ``i`` of split ``s`` starts from
``SeedSequence([base_seed, SPLIT_IDS[s], i])``, so no test state is ever seen
in training.
"""
from __future__ import annotations

import copy

SIZES = ("tiny", "small", "full")
SPLIT_IDS = {"train": 0, "val": 1, "test": 2}

# Sea-surface height from upper-layer streamfunction: eta = (f0 / g) psi1.
F0 = 1.0e-4  # s^-1, mid-latitude Coriolis parameter (pyqg's QGModel leaves f0 implicit in rd)
GRAVITY = 9.81  # m s^-2
#: SSH observation noise (m). The QG eddy SSH has a std of about 1.7 cm (HR, small), so 3 mm gives a
#: signal-to-noise ratio of about 6, that of along-track altimetry (about 3 cm noise on 10-20 cm of
#: mesoscale SSH). 1 cm (SNR 1.7, the first choice) left the obs almost useless next to a 48 h background.
SSH_SIGMA = 0.003
DAY = 86400.0
YEAR = 365.0 * DAY

_L96 = {
    "tiny": dict(spinup=1000, n_steps=400, splits=dict(train=4, val=2, test=2)),
    "small": dict(spinup=1000, n_steps=5000, splits=dict(train=8, val=2, test=4)),
    "full": dict(spinup=1000, n_steps=20000, splits=dict(train=64, val=8, test=8)),
}

_L96X = {
    "tiny": dict(spinup=2000, n_out=400, splits=dict(train=4, val=2, test=2)),
    "small": dict(spinup=2000, n_out=4000, splits=dict(train=8, val=2, test=4)),
    "full": dict(spinup=2000, n_out=20000, splits=dict(train=64, val=8, test=8)),
}

# QG: HR truth coarse-grained to the LR grid that every challenge works on.
# Snapshots are daily; observations are sampled from the HR field every
# ``obs_every`` model steps (dt = 1 h).
_QG = {
    "tiny": dict(nx_hr=64, nx_lr=16, spinup_days=1095, n_days=60,
                 splits=dict(train=2, val=1, test=1)),
    "small": dict(nx_hr=128, nx_lr=32, spinup_days=1095, n_days=360,
                  splits=dict(train=6, val=2, test=2)),
    "full": dict(nx_hr=256, nx_lr=64, spinup_days=1460, n_days=365,
                 splits=dict(train=20, val=4, test=4)),
}

# The jet regime (Ross et al. 2023) for the out-of-distribution test of the closure challenges: the
# same grids and coarse-graining as ``qg``, a test split only (closures never see it before the test),
# no observation stores. Jets form slowly (weak drag): a longer spin-up.
_QG_JET = {
    "tiny": dict(nx_hr=64, nx_lr=16, spinup_days=1460, n_days=60, splits=dict(test=1)),
    "small": dict(nx_hr=128, nx_lr=32, spinup_days=1825, n_days=360, splits=dict(test=2)),
    "full": dict(nx_hr=256, nx_lr=64, spinup_days=2190, n_days=365, splits=dict(test=4)),
}

WORLDS = {
    "l96": "Lorenz-96, N=40, F=8, RK4 dt=0.05 (6 h); every variable observed every step with R = I",
    "l96x": "two-scale Lorenz-96 (Wilks 2005), K=8, J=32, F=20, h=1, b=c=10",
    "qg": "two-layer QG, pyqg QGModel 'eddy' (Ross et al. 2023); HR truth coarse-grained to LR; SSH observations",
    "qg-jet": "two-layer QG, pyqg QGModel 'jet' (Ross et al. 2023): the closure challenges' out-of-distribution test",
}


def get_config(world: str, size: str) -> dict:
    """The full generating configuration of ``world`` at ``size`` (a fresh dict)."""
    if world not in WORLDS:
        raise KeyError(f"unknown world {world!r}; choose one of {', '.join(WORLDS)}")
    if size not in SIZES:
        raise KeyError(f"unknown size {size!r}; choose one of {', '.join(SIZES)}")
    if world == "l96":
        cfg = dict(world="l96", size=size, N=40, F=8.0, dt=0.05, every=1, obs_sigma=1.0,
                   base_seed=9600, group=16, dtype="float64", **_L96[size])
    elif world == "l96x":
        cfg = dict(world="l96x", size=size, K=8, J=32, F=20.0, h=1.0, b=10.0, c=10.0,
                   dt=0.005, every=10, base_seed=9700, group=16, dtype="float64", **_L96X[size])
    elif world == "qg-jet":
        cfg = dict(world="qg-jet", size=size, regime="jet", dt=3600.0, dtype="float64", snapshot_every=24, obs_every=6,
                   base_seed=4300, group=4, ssh_sigma=SSH_SIGMA, f0=F0, g=GRAVITY, obs={}, **_QG_JET[size])
    else:
        cfg = dict(world="qg", size=size, regime="eddy", dt=3600.0, dtype="float64",
                   snapshot_every=24, obs_every=6, base_seed=4200, group=4,
                   ssh_sigma=SSH_SIGMA, f0=F0, g=GRAVITY,
                   **_QG[size])
        # swath pixels at the HR grid spacing; random: one position per LR grid point per day;
        # fixed: 0.2 per LR grid point, the same positions every day (qg-cycle-fixed). Keep the
        # order: each scenario's noise stream is seeded by its position in this dict.
        cfg["obs"] = dict(nadir1=dict(), nadir4=dict(), swath=dict(pixel_km=1000.0 / cfg["nx_hr"]),
                          random=dict(fraction=1.0, n_grid=cfg["nx_lr"] ** 2),
                          fixed=dict(fraction=0.2, n_grid=cfg["nx_lr"] ** 2))
    return copy.deepcopy(cfg)


def seeds_for(cfg: dict, split: str) -> list[int]:
    """One 63-bit integer seed per trajectory of ``split``, disjoint across splits."""
    import numpy as np

    n = cfg["splits"][split]
    return [int(np.random.SeedSequence([cfg["base_seed"], SPLIT_IDS[split], i]).generate_state(2, np.uint64)[0] >> np.uint64(1))
            for i in range(n)]
