"""The truth is the same bytes on every scheduler, under load, and equals the committed canonical dataset."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from data_scripts.generate import generate
from data_scripts.manifest import canonical_fingerprints, canonical_status, fingerprint, record_canonical

# A fresh interpreter per generation: the race that broke reproducibility was between the first
# callers of the QG kernel loader in one process, so a process that already holds the kernel
# cannot show it.
SCRIPT = textwrap.dedent("""
    import json, sys
    from data_scripts import config as C
    from data_scripts.generate import generate
    from data_scripts.manifest import read_manifest
    C._QG["tiny"] = dict(C._QG["tiny"], spinup_days=10, n_days=3)
    path = generate("qg", "tiny", root=sys.argv[1], progress=False, scheduler=sys.argv[2],
                    workers=int(sys.argv[3]))
    print(json.dumps(read_manifest(path)["arrays"], sort_keys=True))
""")

LOAD = "import time\nt = time.time()\nwhile time.time() - t < 600: sum(i * i for i in range(10000))\n"


def _generate_in_fresh_process(root, scheduler: str, workers: int) -> dict:
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(root), scheduler, str(workers)], capture_output=True,
                         text=True, timeout=600, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_qg_generation_is_identical_under_load_with_many_workers(tmp_path):
    """Three threaded generations (4 and 3 workers) while another process loads the CPU, and a serial one."""
    load = subprocess.Popen([sys.executable, "-c", LOAD])
    try:
        runs = [_generate_in_fresh_process(tmp_path / f"r{i}", "threads", w) for i, w in enumerate((4, 3, 4))]
    finally:
        load.kill()
    serial = _generate_in_fresh_process(tmp_path / "serial", "sync", 1)
    for r in runs:
        assert r == serial


CANONICAL = textwrap.dedent("""
    import sys
    from data_scripts.generate import generate
    from data_scripts.manifest import canonical_status
    print(canonical_status(generate(sys.argv[1], "tiny", root=sys.argv[2], progress=False))[1])
""")


@pytest.mark.parametrize("world", ["l96", "qg"])
def test_fresh_tiny_generation_is_the_canonical_dataset_on_any_cpu(world, tmp_path):
    """The committed fingerprints were made on an AMD EPYC; MKL_CBWR=COMPATIBLE (set by data_scripts)
    makes an Intel Xeon with AVX-512 give the same bytes (without it, qg differed)."""
    ref = canonical_fingerprints().get(world, {}).get("tiny")
    assert ref is not None, f"no canonical fingerprint committed for {world}/tiny"
    env = {k: v for k, v in os.environ.items() if k != "MKL_CBWR"}
    out = subprocess.run([sys.executable, "-c", CANONICAL, world, str(tmp_path)], capture_output=True, text=True,
                         timeout=600, cwd=os.path.dirname(os.path.dirname(__file__)), env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "it is the canonical" in out.stdout, out.stdout


def test_canonical_status_names_a_different_dataset(tmp_path, monkeypatch):
    from data_scripts import manifest

    path = generate("l96", "tiny", root=tmp_path, progress=False)
    table = tmp_path / "fingerprints.json"
    monkeypatch.setattr(manifest, "FINGERPRINTS", table)
    assert canonical_status(path)[0] is None
    record_canonical(path)
    assert canonical_status(path) == (True, canonical_status(path)[1])
    data = json.loads(table.read_text())
    data["l96"]["tiny"]["sha256"] = "0" * 64
    table.write_text(json.dumps(data))
    ok, sentence = canonical_status(path)
    assert ok is False and "NOT the canonical" in sentence and fingerprint(path)[:12] in sentence


RACE = """
import os, sys, time
from pathlib import Path
from bench.runner import ensure_data
from bench.registry import get_challenge
root, go = sys.argv[1], Path(sys.argv[2])
Path(sys.argv[3]).touch()
while not go.exists():
    time.sleep(0.01)
path = ensure_data(get_challenge("l96-da"), "tiny", root=root, progress=False)
print((Path(root) / "l96" / "tiny" / "manifest.json").stat().st_mtime_ns)
"""


def test_two_runs_needing_the_same_missing_dataset_generate_it_once(tmp_path):
    """Two processes released at the same moment: the second waits on the lock and reads the first's dataset."""
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", RACE, str(tmp_path / "data"), str(go), str(tmp_path / f"ready{i}")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    deadline = time.time() + 120
    while not all((tmp_path / f"ready{i}").exists() for i in range(2)) and time.time() < deadline:
        time.sleep(0.05)
    go.touch()
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-500:] for o in outs]
    stamps = {o[0].split()[-1] for o in outs}
    assert len(stamps) == 1, "the dataset was written twice"
    assert sum("generating it" in o[0] for o in outs) == 2  # both found it missing...
    assert sum("waiting for it" in o[1] for o in outs) == 1  # ...and one waited for the other
