"""The worlds and their datasets.

Importing this package sets ``MKL_CBWR=COMPATIBLE`` (unless the user set MKL_CBWR): MKL's
conditional numerical reproducibility, which MKL documents as giving the same results on
every x86 CPU. Without it the QG datasets' bytes depended on the CPU: qg tiny and small
generated on an Intel Xeon (AVX-512) differed from those made earlier on an AMD EPYC. With it
the Xeon reproduced the AMD-made qg tiny exactly but not qg small, so the canonical qg and
qg-jet small datasets were regenerated in this mode (data_scripts/fingerprints.json records
it). It costs about a third more generation time. MKL reads the variable when it first runs,
so this package must be imported before any torch FFT runs (``bench`` does); ``numerics()``
records the setting in every manifest and results file. See docs/worlds.md, "Reproducibility".
"""
import os

os.environ.setdefault("MKL_CBWR", "COMPATIBLE")


def numerics() -> dict:
    """The settings that decide the bytes of floating-point results on CPU."""
    return {"MKL_CBWR": os.environ.get("MKL_CBWR")}
