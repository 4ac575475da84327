"""Safe names for results, submissions and runs.

A name becomes a file or directory name under the directory the user gave
(``<results>/<challenge>/<size>/<name>.json``, ``runs/<challenge>/<size>/<name>/``)
and a row of a Markdown table, so it must not hold a path separator, start a
hidden or relative path (``.``, ``..``), break a table (``|``, newlines) or be
empty. Accepted: a letter or digit, then up to 63 letters, digits, ``.``,
``_``, ``+`` or ``-``.
"""
from __future__ import annotations

import re

from .errors import UserError

PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
RULE = "a letter or digit followed by at most 63 letters, digits, '.', '_', '+' or '-'"


def is_safe(name) -> bool:
    return isinstance(name, str) and PATTERN.fullmatch(name) is not None


def check_name(name, what: str = "name") -> str:
    """``name`` if it is safe, else a UserError (one sentence, exit 2)."""
    if not is_safe(name):
        shown = repr(name) if len(str(name)) <= 40 else repr(str(name)[:40]) + "..."
        raise UserError(f"{what} {shown} is not allowed: use {RULE}")
    return name
