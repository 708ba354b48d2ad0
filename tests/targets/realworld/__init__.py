"""Real-world CLI checkers of the notes web app (`notes_web`), each with its own pinned requirements.

``checklib_checker/`` is written as ForcAD organizers write them (checklib, requests, bs4),
``gornilo_checker/`` on HackerDom's gornilo 0.9 (the platform's own venv has 1.x). Neither
can run on the platform's interpreter. The suite runs them in the platform's own
per-service environments (`checker.envs`) and sandbox; `install_checker` makes the other
kind, a copy with a virtual environment whose python its ``#!`` line names, for the
benchmark's baseline of one interpreter per action (as exec-per-action platforms run them).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).parent
CHECKERS = ("checklib_checker", "gornilo_checker")
WARM = HERE / "warm.py"  # runs a checklib checker's actions in one interpreter
SYSTEM_PYTHON = "/usr/bin/python3"


def make_env(requirements: Path, where: Path) -> Path:
    """A virtual environment at `where` with `requirements` installed; its python."""
    subprocess.run([SYSTEM_PYTHON, "-m", "venv", str(where)], check=True, capture_output=True, timeout=120)
    python = where / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "-q"]
    done = subprocess.run([*pip, "-r", str(requirements)], capture_output=True, text=True, timeout=600)
    if done.returncode:
        raise RuntimeError(f"pip install -r {requirements} failed:\n{done.stdout[-2000:]}{done.stderr[-4000:]}")
    return python


def install_checker(name: str, work: Path) -> Path:
    """Checker folder `name` copied into `work` with an environment of its own; its checker.py.

    `work` and its parents must be searchable by everyone for the checker to run as nobody.
    """
    folder = work / name
    shutil.copytree(HERE / name, folder, ignore=shutil.ignore_patterns("__pycache__"))
    python = make_env(folder / "requirements.txt", work / f"{name}.venv")
    script = folder / "checker.py"
    _, rest = script.read_text().split("\n", 1)
    script.write_text(f"#!{python}\n{rest}")
    script.chmod(0o755)
    return script


def python_of(script: Path) -> str:
    """The interpreter an installed checker's ``#!`` line names."""
    return script.read_text().split("\n", 1)[0][2:].strip()
