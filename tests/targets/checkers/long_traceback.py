#!/usr/bin/env python3
"""A checker that dies with a traceback longer than the runner keeps: its last line names the error."""

import sys

sys.stderr.write("noise line of a chatty library\n" * 5000)


def deep(n: int) -> None:
    if n == 0:
        raise ValueError("the real cause is named on the last line")
    deep(n - 1)


deep(200)
