"""Submission validation: every bad-input class gives one sentence, exit 2, nothing written."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.errors import UserError
from bench.validate import check, load, problems


def template():
    return xr.Dataset(
        {"ssh": (("traj", "time", "y", "x"), np.full((2, 5, 4, 4), np.nan))},
        coords={"traj": [0, 1], "time": np.arange(5.0), "y": np.arange(4) * 10.0 + 5, "x": np.arange(4) * 10.0 + 5})


def good():
    t = template()
    return t.assign(ssh=t.ssh.fillna(0.1))


def test_good_submission_passes_in_any_dim_order():
    sub = good().transpose("x", "time", "y", "traj")
    out = check(sub, template())
    assert out.ssh.dims == ("traj", "time", "y", "x")


MUTATIONS = {
    "missing variable": lambda d: d.rename({"ssh": "eta"}),
    "missing dim": lambda d: d.isel(x=0, drop=True),
    "extra dim": lambda d: d.expand_dims(member=2),
    "wrong length": lambda d: d.isel(time=slice(0, 4)),
    "coordinate values": lambda d: d.assign_coords(x=d.x + 1.0),
    "nan": lambda d: d.assign(ssh=d.ssh.where(d.ssh.time != 2)),
    "inf": lambda d: d.assign(ssh=d.ssh.where(d.ssh.time != 2, np.inf)),
    "integer dtype": lambda d: d.assign(ssh=d.ssh.astype(np.int32)),
    "missing coordinate": lambda d: d.drop_vars("time"),
}


@pytest.mark.parametrize("kind", list(MUTATIONS))
def test_each_mutation_is_reported(kind):
    found = problems(MUTATIONS[kind](good()), template())
    assert found, kind
    assert all("\n" not in s and "Traceback" not in s for s in found)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kinds=st.lists(st.sampled_from(sorted(MUTATIONS)), min_size=1, max_size=3, unique=True))
def test_any_combination_of_mutations_is_rejected(kinds):
    sub = good()
    for k in kinds:
        try:
            sub = MUTATIONS[k](sub)
        except (ValueError, KeyError, AttributeError):
            return
    with pytest.raises(UserError):
        check(sub, template())


def test_unreadable_empty_and_wrong_format(tmp_path):
    empty = tmp_path / "sub.nc"
    empty.write_bytes(b"")
    with pytest.raises(UserError, match="empty"):
        load(empty)
    junk = tmp_path / "junk.nc"
    junk.write_bytes(b"not a netcdf file at all")
    with pytest.raises(UserError, match="cannot be read"):
        load(junk)
    with pytest.raises(UserError, match="neither zarr"):
        load(_touch(tmp_path / "x.csv"))
    with pytest.raises(UserError, match="does not exist"):
        load(tmp_path / "nope.zarr")


def _touch(p):
    p.write_text("a,b\n1,2\n")
    return p


def test_roundtrip_zarr_and_netcdf(tmp_path):
    for name in ("s.zarr", "s.nc"):
        path = tmp_path / name
        (good().to_zarr if name.endswith("zarr") else good().to_netcdf)(path)
        assert problems(load(path), template()) == []
