"""Shared fixtures: the tiny datasets the tests read.

``tiny_data(*worlds)`` returns a data root holding those worlds at size ``tiny``:
``$BENCH_DATA`` when set (CI generates there once for all tests), else one
temporary directory for the whole session; missing worlds are generated.
``one_thread`` runs a test with one torch thread (the suite's CPU budget; restored after);
``one_thread_in_tmp`` also runs it in its own temporary directory (checkpoints and logs
under ./runs of that test). Test files opt in with ``pytestmark``.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    from data_scripts.generate import dataset_path, generate
    from data_scripts.manifest import MANIFEST

    env = os.environ.get("BENCH_DATA")
    base = Path(env) if env else tmp_path_factory.mktemp("data")

    def root(*worlds: str) -> Path:
        for world in worlds:
            if not (dataset_path(world, "tiny", base) / MANIFEST).exists():
                generate(world, "tiny", root=base, progress=False)
        return base

    return root


@pytest.fixture
def one_thread():
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def one_thread_in_tmp(one_thread, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
