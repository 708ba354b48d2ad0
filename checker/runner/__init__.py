"""The checker runner: run one checker action over any of the three protocols (DESIGN 5).

    result = run_action(service.checker, config.resolve(service.checker.path), "put", host,
                        flag_id=flag_id, flag=flag, vuln=1)
"""

from .base import ActionResult, CheckerInfo, CheckerInfoError
from .cli import parse_info
from .dispatch import checker_info, run_action
from .native import CheckerLoadError

__all__ = [
    "ActionResult",
    "CheckerInfo",
    "CheckerInfoError",
    "CheckerLoadError",
    "checker_info",
    "parse_info",
    "run_action",
]
