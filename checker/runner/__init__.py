"""The checker runner: run one checker action over any of the three protocols (DESIGN 5).

    result = run_service_action(config, service, "put", host, flag_id=flag_id, flag=flag, vuln=1)

(`run_service_action` is the round engine's: in the service's sandbox. `run_action` runs
in this process, for tools and the runner's own tests.)
"""

from .base import ActionResult, CheckerInfo, CheckerInfoError
from .cli import parse_info
from .dispatch import checker_info, run_action, run_service_action
from .native import CheckerLoadError

__all__ = [
    "ActionResult",
    "CheckerInfo",
    "CheckerInfoError",
    "CheckerLoadError",
    "checker_info",
    "parse_info",
    "run_action",
    "run_service_action",
]
