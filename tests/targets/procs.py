"""Process facts for tests: is a pid still a live (non-zombie) process."""

from __future__ import annotations

from pathlib import Path


def is_alive(pid: int) -> bool:
    """True when `pid` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"
