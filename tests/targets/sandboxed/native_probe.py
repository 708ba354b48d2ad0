"""A native checker that reports where it runs: never in the worker, never as root."""

import os

from checker.lib import Checker, Mumble


class Probe(Checker):
    def check(self) -> None:
        if os.getuid() == 0:
            raise Mumble("ran as root", f"uid {os.getuid()}")

    def put(self, flag_id: str, flag: str, vuln: int) -> str:
        return f"{os.getuid()}:{os.getpid()}"

    def get(self, flag_id: str, flag: str, vuln: int) -> None:
        return None
