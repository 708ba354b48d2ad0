"""`checker.lib`: everything a challenge author needs to write a checker.

    from checker.lib import Checker, Mumble, Corrupt, main, rand_user

    class NotesChecker(Checker):
        vulns = [1, 2]

        def put(self, flag_id, flag, vuln):
            ...

    if __name__ == "__main__":
        main(NotesChecker)
"""

from scoreboard.types import Status

from .base import Checker
from .cli import main
from .errors import CheckerError, Corrupt, Down, Mumble, StatusError
from .net import HttpSession, LineSocket
from .rand import rand_password, rand_string, rand_text, rand_user

__all__ = [
    "Checker",
    "CheckerError",
    "Corrupt",
    "Down",
    "HttpSession",
    "LineSocket",
    "Mumble",
    "Status",
    "StatusError",
    "main",
    "rand_password",
    "rand_string",
    "rand_text",
    "rand_user",
]
