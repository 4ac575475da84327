"""Submission loading and validation against a challenge's template.

Every problem is one sentence; the caller stops with exit code 2 and writes
nothing. Dims may come in any order (they are transposed to the template's);
extra variables are ignored, except the challenge's optional variables
(``restarted`` in cycling), which are validated when present and kept. A
value outside a variable's physical bounds (the template's ``valid_min`` /
``valid_max``: the training mean +- 1000 training standard deviations) is
refused: a finite 1e300 is not a prediction.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from .errors import UserError

FORMATS = (".zarr", ".nc", ".nc4", ".netcdf")


def load(path) -> xr.Dataset:
    """Open a zarr or netCDF submission, or raise UserError with one sentence."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"submission {path} does not exist")
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise UserError(f"submission {path} is neither zarr (.zarr) nor netCDF (.nc); write it with "
                        "xarray's to_zarr or to_netcdf")
    if path.is_file() and path.stat().st_size == 0:
        raise UserError(f"submission {path} is empty")
    try:
        if suffix == ".zarr":
            ds = xr.open_zarr(path, consolidated=False)
        else:
            ds = xr.open_dataset(path)
        ds = ds.load()
    except Exception as exc:
        raise UserError(f"submission {path} cannot be read as {'zarr' if suffix == '.zarr' else 'netCDF'} "
                        f"({type(exc).__name__})") from None
    if not ds.data_vars:
        raise UserError(f"submission {path} holds no variables")
    return ds


def problems(pred: xr.Dataset, template: xr.Dataset, optional_dims: tuple = (), optional_vars=None) -> list[str]:
    """One sentence per way ``pred`` differs from ``template`` (empty = valid).

    ``optional_dims`` (e.g. ``member`` for ensembles) may be added to every variable;
    ``optional_vars`` ({name: dims}) may be present and must then have those dims and the
    template's lengths along them.
    """
    out = []
    for name, dims in (optional_vars or {}).items():
        if name not in pred.data_vars:
            continue
        pv = pred[name]
        if set(pv.dims) != set(dims):
            out.append(f"optional variable {name!r} has dims {tuple(pv.dims)} but must have {tuple(dims)}")
        elif any(pv.sizes[d] != template.sizes[d] for d in dims if d in template.sizes):
            out.append(f"optional variable {name!r} has sizes {dict(pv.sizes)}; expected "
                       f"{ {d: template.sizes[d] for d in dims if d in template.sizes} }")
    for name, tv in template.data_vars.items():
        if name not in pred.data_vars:
            out.append(f"variable {name!r} is missing (expected dims {tuple(tv.dims)})")
            continue
        pv = pred[name]
        if set(pv.dims) - set(optional_dims) != set(tv.dims):
            missing = [d for d in tv.dims if d not in pv.dims]
            extra = [d for d in pv.dims if d not in tv.dims and d not in optional_dims]
            what = "; ".join(s for s in (f"missing dims {missing}" if missing else "",
                                          f"extra dims {extra}" if extra else "") if s)
            out.append(f"variable {name!r} has dims {tuple(pv.dims)} but must have {tuple(tv.dims)} ({what})")
            continue
        for d in tv.dims:
            if pv.sizes[d] != tv.sizes[d]:
                out.append(f"variable {name!r} has length {pv.sizes[d]} along {d!r} but must have {tv.sizes[d]}")
        if not np.issubdtype(pv.dtype, np.floating):
            out.append(f"variable {name!r} has dtype {pv.dtype} but must be floating point (float32 or float64)")
        elif all(pv.sizes[d] == tv.sizes[d] for d in tv.dims):
            vals = np.asarray(pv.values)
            bad = int((~np.isfinite(vals)).sum())
            if bad:
                out.append(f"variable {name!r} has {bad} NaN or infinite value(s)")
            lo, hi = tv.attrs.get("valid_min"), tv.attrs.get("valid_max")
            if lo is not None and hi is not None:
                with np.errstate(invalid="ignore"):
                    outside = int(((vals < lo) | (vals > hi)).sum())
                if outside:
                    out.append(f"variable {name!r} has {outside} value(s) outside its physical range "
                               f"[{lo:.3g}, {hi:.3g}] {tv.attrs.get('units', '')}".rstrip())
    for cname, cv in template.coords.items():
        if cname not in pred.coords:
            if cname in template.dims:
                out.append(f"coordinate {cname!r} is missing")
            continue
        pc = pred[cname]
        if pc.shape != cv.shape:
            continue  # reported above as a length problem
        a, b = np.asarray(pc.values), np.asarray(cv.values)
        if np.issubdtype(b.dtype, np.number):
            same = np.issubdtype(a.dtype, np.number) and np.allclose(a, b, rtol=1e-6, atol=1e-9)
        else:
            same = np.array_equal(a.astype(str), b.astype(str))
        if not same:
            out.append(f"coordinate {cname!r} values do not match the challenge's (first expected {b.ravel()[:3].tolist()}, "
                       f"got {a.ravel()[:3].tolist()})")
    return out


def conform(pred: xr.Dataset, template: xr.Dataset, optional_vars=None) -> xr.Dataset:
    """The template's variables of ``pred``, transposed (optional dims first) with the template's coords,
    plus the optional variables it holds."""
    out = xr.Dataset({k: pred[k].transpose(*[d for d in pred[k].dims if d not in template[k].dims],
                                           *template[k].dims).astype(np.float64)
                      for k in template.data_vars})
    for name, dims in (optional_vars or {}).items():
        if name in pred.data_vars:
            out[name] = pred[name].transpose(*dims).reset_coords(drop=True)
    return out.assign_coords({k: template[k] for k in template.coords})


def check(pred: xr.Dataset, template: xr.Dataset, what: str = "submission", optional_dims: tuple = (),
          optional_vars=None) -> xr.Dataset:
    """Validate and conform, or raise UserError listing every problem."""
    found = problems(pred, template, optional_dims, optional_vars)
    if found:
        raise UserError(f"{what} is not valid: " + "; ".join(found))
    return conform(pred, template, optional_vars)
