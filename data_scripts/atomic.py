"""All-or-nothing writes: every output is built under a temporary sibling name, then renamed into place.

``Transaction`` stages any number of outputs (files or directories) and
commits them together: each staged path is renamed over its target (an
existing target is first moved aside and deleted only once every rename has
succeeded); if anything fails, the renames already done are undone and the
temporary outputs removed, so the targets hold either all the new outputs or
all the old ones, never a half-written mix. A reader never sees a partially
written target.

Temporary names are ``.<target name>.tmp-<random>`` in the target's directory
(the same file system, so a rename is atomic). A staged directory carries an
``.owner`` file with the writer's host and process id; ``clean_stale`` removes
temporary directories whose writer is gone (a killed run), never those of a
live process.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import uuid
from contextlib import contextmanager
from pathlib import Path

OWNER = ".owner"


def temp_sibling(target: Path, tag: str = "tmp") -> Path:
    target = Path(target)
    return target.parent / f".{target.name}.{tag}-{uuid.uuid4().hex[:8]}"


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


def mark_owner(directory: Path) -> None:
    """Record this process as the writer of a temporary directory."""
    Path(directory).mkdir(parents=True, exist_ok=True)
    (Path(directory) / OWNER).write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid()}))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(parent: Path, name: str) -> list[Path]:
    """Remove ``.<name>.tmp-*`` directories in ``parent`` whose writer (``.owner``) is no longer running.

    Directories without an owner file, or written on another host, are left alone. Returns
    the removed paths.
    """
    removed = []
    parent = Path(parent)
    if not parent.is_dir():
        return removed
    for p in parent.glob(f".{name}.tmp-*"):
        try:
            owner = json.loads((p / OWNER).read_text())
        except (OSError, ValueError):
            continue
        if owner.get("host") == socket.gethostname() and not _alive(int(owner.get("pid", -1))):
            _remove(p)
            removed.append(p)
    return removed


class Transaction:
    """Stage outputs with ``stage(target)``; ``commit()`` puts them all in place, or none."""

    def __init__(self):
        self._staged: list[tuple[Path, Path]] = []
        self._made: list[Path] = []  # directories created for the outputs (removed again if empty on failure)

    def stage(self, target, directory: bool = False) -> Path:
        """A temporary path beside ``target`` to write the new output to (created if ``directory``)."""
        target = Path(target)
        missing = [p for p in (target.parent, *target.parent.parents) if not p.exists()]
        target.parent.mkdir(parents=True, exist_ok=True)
        self._made.extend(missing)
        tmp = temp_sibling(target)
        if directory:
            mark_owner(tmp)
        self._staged.append((tmp, target))
        return tmp

    def commit(self) -> None:
        done: list[tuple[Path, Path, Path | None]] = []
        try:
            for tmp, target in self._staged:
                if not (tmp.exists() or tmp.is_symlink()):
                    raise FileNotFoundError(f"staged output {tmp} was never written")
                if tmp.is_dir():
                    (tmp / OWNER).unlink(missing_ok=True)
                old = None
                if target.exists() or target.is_symlink():
                    old = temp_sibling(target, "old")
                    os.replace(target, old)
                try:
                    os.replace(tmp, target)
                except BaseException:
                    if old is not None:
                        os.replace(old, target)
                    raise
                done.append((tmp, target, old))
        except BaseException:
            for _tmp, target, old in reversed(done):
                _remove(target)
                if old is not None:
                    os.replace(old, target)
            self.discard()
            raise
        for _tmp, _target, old in done:
            if old is not None:
                _remove(old)
        self._staged = []
        self._made = []

    def discard(self) -> None:
        for tmp, _target in self._staged:
            _remove(tmp)
        self._staged = []
        for d in self._made:  # deepest first
            try:
                d.rmdir()
            except OSError:
                pass
        self._made = []


@contextmanager
def transaction():
    """``with transaction() as tx: write to tx.stage(a), tx.stage(b)`` -> both in place, or neither."""
    tx = Transaction()
    try:
        yield tx
    except BaseException:
        tx.discard()
        raise
    tx.commit()


def write_text(target, text: str) -> Path:
    """Write one text file atomically."""
    with transaction() as tx:
        tmp = tx.stage(target)
        tmp.write_text(text)
    return Path(target)
