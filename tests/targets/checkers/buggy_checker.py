"""A checker.lib checker with a bug in check and a put that hangs."""

import time

from checker.lib import Checker, main


class BuggyChecker(Checker):
    timeout = 1

    def check(self) -> None:
        print(1 / 0)

    def put(self, flag_id: str, flag: str, vuln: int) -> str:
        while True:
            try:
                time.sleep(10)
            except Exception:  # a careless checker cannot swallow the deadline
                pass
        return flag_id


if __name__ == "__main__":
    main(BuggyChecker)
