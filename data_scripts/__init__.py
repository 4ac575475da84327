"""The worlds and their datasets.

Importing this package sets ``MKL_CBWR=COMPATIBLE`` (unless the user set MKL_CBWR): MKL's
conditional numerical reproducibility, which makes its FFTs take the same code path on every
x86 CPU. Without it the QG datasets' bytes depended on the CPU vendor (measured: qg tiny
generated on an Intel Xeon with AVX-512 differed from the canonical one made on an AMD EPYC;
with COMPATIBLE the Xeon reproduces it exactly), at a cost of about a third more generation
time. MKL reads the variable when it first runs, so this package must be imported before
any torch FFT runs (``bench`` does); ``numerics()`` records the setting in every manifest and
results file. See docs/worlds.md, "Reproducibility".
"""
import os

os.environ.setdefault("MKL_CBWR", "COMPATIBLE")


def numerics() -> dict:
    """The settings that decide the bytes of floating-point results on CPU."""
    return {"MKL_CBWR": os.environ.get("MKL_CBWR")}
