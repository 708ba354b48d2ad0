"""Whom a CLI checker runs as: ``nobody`` when the worker is root and nobody can use the files.

A checker needs to read its file, enter its folder and execute its interpreter. When nobody
cannot, the checker runs as the worker's own user and the reason is reported, rather than
failing every round with a permission error that looks like the team's fault.
"""

from __future__ import annotations

import os
import pwd
import shutil
from pathlib import Path

from .process import RunAs

UNPRIVILEGED_USER = "nobody"
READ, EXECUTE = 4, 1


def choose_user(files: list[tuple[Path, int]]) -> tuple[RunAs | None, str]:
    """`RunAs` nobody (or None to stay as we are) and a note saying which and why.

    `files` lists each path the checker needs with the access it needs (READ, EXECUTE or both).
    """
    if os.geteuid() != 0:
        return None, ""
    try:
        entry = pwd.getpwnam(UNPRIVILEGED_USER)
    except KeyError:
        return None, f"as root: no user {UNPRIVILEGED_USER!r}"
    for path, want in files:
        if not usable_by(entry.pw_uid, entry.pw_gid, path, want):
            return None, f"as root: {UNPRIVILEGED_USER} cannot use {path}"
    return RunAs(entry.pw_uid, entry.pw_gid), f"as {UNPRIVILEGED_USER}"


def usable_by(uid: int, gid: int, path: Path, want: int) -> bool:
    """True when `uid`/`gid` can reach `path` (search every parent) and has `want` access to it."""
    for candidate in {Path(os.path.abspath(path)), path.resolve()}:
        try:
            if not all(_allows(uid, gid, os.stat(parent), EXECUTE) for parent in candidate.parents):
                return False
            if not _allows(uid, gid, os.stat(candidate), want):
                return False
        except OSError:
            return False
    return True


def interpreter_of(script: Path, search_path: str) -> Path | None:
    """The program a ``#!`` line names (through ``/usr/bin/env``), or None without one."""
    try:
        with script.open("rb") as handle:
            first = handle.readline(256)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    words = first[2:].decode(errors="replace").split()
    if not words:
        return None
    if Path(words[0]).name == "env" and len(words) > 1:
        found = shutil.which(words[-1] if words[1].startswith("-") else words[1], path=search_path)
        return Path(found) if found else None
    return Path(words[0])


def _allows(uid: int, gid: int, info: os.stat_result, want: int) -> bool:
    if info.st_uid == uid:
        bits = (info.st_mode >> 6) & 7
    elif info.st_gid == gid:
        bits = (info.st_mode >> 3) & 7
    else:
        bits = info.st_mode & 7
    return bits & want == want
