"""`run_action` and `checker_info`: one entry point over the three checker protocols."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scoreboard.config import CheckerSpec, GameConfig, Service

from .base import ACTIONS, Action, ActionRequest, ActionResult, CheckerInfo
from .cli import cli_info, run_cli_action
from .eno import eno_info, run_eno_action
from .native import native_info, run_native_action


def run_action(
    spec: CheckerSpec,
    path: Path | None,
    action: Action,
    host: str,
    flag_id: str = "",
    flag: str = "",
    vuln: int = 1,
    timeout: float | None = None,
    context: dict[str, Any] | None = None,
) -> ActionResult:
    """Run `action` ("check", "put" or "get") of the checker `spec` describes against `host`,
    from this process (checker authors' tools and the runner's own tests; the round engine
    uses `run_service_action`, which runs it in the service's sandbox).

    `path` is the checker file resolved against the game file (default: ``spec.path``);
    `timeout` defaults to ``spec.timeout``; `context` carries round and team ids for ENO.
    Never raises for checker or target trouble: that is in the returned status.
    """
    request = _request(spec, action, host, flag_id, flag, vuln, timeout, context)
    if spec.protocol == "eno":
        assert spec.url is not None
        return run_eno_action(spec.url, request)
    checker_path = _checker_path(spec, path)
    if spec.protocol == "cli":
        return run_cli_action(checker_path, request)
    return run_native_action(checker_path, spec.class_name, request)


def run_service_action(config: GameConfig, service: Service, action: Action, host: str, *args: Any,
                       **kwargs: Any) -> ActionResult:
    """The round engine's way to run an action (flag_id, flag, vuln, timeout, context as for
    `run_action`): ENO over
    HTTP; native and CLI checkers in the service's sandbox (`checker.sandbox`: its own user,
    environment, cgroup and a PID namespace per action), never in this process, never as root."""
    from checker.sandbox import run_sandboxed

    if service.checker.protocol == "eno":
        return run_action(service.checker, None, action, host, *args, **kwargs)
    return run_sandboxed(config, service, _request(service.checker, action, host, *args, **kwargs))


def _request(spec: CheckerSpec, action: Action, host: str, flag_id: str = "", flag: str = "", vuln: int = 1,
             timeout: float | None = None, context: dict[str, Any] | None = None) -> ActionRequest:
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {ACTIONS}, not {action!r}")
    return ActionRequest(action, host, flag_id, flag, vuln, timeout if timeout is not None else spec.timeout,
                         context or {})


def checker_info(spec: CheckerSpec, path: Path | None = None) -> CheckerInfo:
    """What the checker says about itself (vuln weights, timeout, attack data).

    Raises `CheckerInfoError` when it cannot tell.
    """
    if spec.protocol == "eno":
        assert spec.url is not None
        return eno_info(spec.url, spec.timeout)
    checker_path = _checker_path(spec, path)
    if spec.protocol == "cli":
        return cli_info(checker_path, spec.timeout)
    return native_info(checker_path, spec.class_name)


def _checker_path(spec: CheckerSpec, path: Path | None) -> Path:
    if path is not None:
        return Path(path)
    if spec.path is None:
        raise ValueError(f"protocol {spec.protocol} needs a checker path")
    return Path(spec.path)
