"""Native protocol: a `checker.lib.Checker` subclass loaded from its file and run in the worker.

No process is started: the class is imported once per (file, modification time) and each
action runs in-process under `checker.lib.outcome.perform`, which enforces the time limit
and turns exceptions into statuses.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import threading
import time
import traceback
from pathlib import Path
from types import ModuleType

from checker.lib.base import Checker
from checker.lib.outcome import perform
from scoreboard.types import Status

from .base import ActionRequest, ActionResult, CheckerInfo, CheckerInfoError

_cache: dict[tuple[str, str | None], tuple[float, type[Checker]]] = {}
_lock = threading.Lock()


class CheckerLoadError(CheckerInfoError):
    """The checker file cannot be imported or holds no usable `Checker` subclass."""


def load_checker_class(path: Path, class_name: str | None = None) -> type[Checker]:
    """The `Checker` subclass in `path`: `class_name`, or the only subclass defined there.

    Cached per (path, modification time): an edited file is imported afresh.
    """
    path = path.resolve()
    key = (str(path), class_name)
    try:
        mtime = path.stat().st_mtime
    except OSError as exc:
        raise CheckerLoadError(f"cannot read checker {path}: {exc.strerror}") from None
    with _lock:
        cached = _cache.get(key)
        if cached and cached[0] == mtime:
            return cached[1]
        cls = _pick_class(_import(path, mtime), path, class_name)
        _cache[key] = (mtime, cls)
        return cls


def run_native_action(path: Path, class_name: str | None, request: ActionRequest) -> ActionResult:
    """Run one action of the native checker at `path` in this process."""
    started = time.monotonic()
    try:
        cls = load_checker_class(path, class_name)
    except Exception as exc:
        return ActionResult(
            request.action, Status.CHECKER_ERROR, "checker error", _format(exc),
            duration=time.monotonic() - started, command=str(path),
        )
    outcome = perform(
        cls, request.action, request.host, request.flag_id, request.flag, request.vuln, request.timeout
    )
    return ActionResult(
        request.action,
        outcome.status,
        outcome.public,
        outcome.private,
        flag_id=outcome.flag_id,
        public_flag_id=outcome.public_flag_id,
        duration=time.monotonic() - started,
        command=f"{path}:{cls.__name__}",
    )


def native_info(path: Path, class_name: str | None) -> CheckerInfo:
    """Flag store weights, timeout and attack-data flag from the class attributes."""
    cls = load_checker_class(path, class_name)
    return CheckerInfo(vulns=list(cls.vulns), timeout=float(cls.timeout), attack_data=bool(cls.attack_data))


def _import(path: Path, mtime: float) -> ModuleType:
    digest = hashlib.sha1(f"{path}:{mtime}".encode()).hexdigest()[:12]
    name = f"adrange_checker_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise CheckerLoadError(f"{path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    folder = str(path.parent)
    added = folder not in sys.path
    if added:
        sys.path.append(folder)  # helper modules beside the checker
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise CheckerLoadError(f"importing {path} failed:\n{_format(exc)}") from exc
    finally:
        if added and folder in sys.path:  # the checker may have removed it itself
            sys.path.remove(folder)
    return module


def _pick_class(module: ModuleType, path: Path, class_name: str | None) -> type[Checker]:
    if class_name:
        cls = getattr(module, class_name, None)
        if not (isinstance(cls, type) and issubclass(cls, Checker)):
            raise CheckerLoadError(f"{path}: no Checker subclass named {class_name!r}")
        return cls
    found = [
        value for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, Checker) and value.__module__ == module.__name__
    ]
    if len(found) != 1:
        names = ", ".join(c.__name__ for c in found) or "none"
        raise CheckerLoadError(f"{path}: expected one Checker subclass, found {names}; set checker.class")
    return found[0]


def _format(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)).strip()
