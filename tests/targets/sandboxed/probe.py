#!/usr/bin/env python3
"""A CLI checker that probes its sandbox: who it runs as, escapees, memory, C-level hangs.

check HOST: report uid, pid (1: its own PID namespace) and __name__; OK unless root.
put HOST ID MODE VULN: MODE "escape" starts a setsid helper and hangs; "hog" eats 3 GiB;
"chang" hangs in C (libc sleep, no Python signal can end it).
"""

import ctypes
import os
import subprocess
import sys

action = sys.argv[1]
if action == "check":
    print(f"uid={os.getuid()} pid={os.getpid()} name={__name__} cwd={os.getcwd()}")
    sys.exit(110 if os.getuid() == 0 else 101)
mode = sys.argv[4]
if mode == "escape":
    subprocess.Popen(["setsid", "sleep", sys.argv[3]], start_new_session=True)
    print("escapee started", file=sys.stderr, flush=True)
    ctypes.CDLL(None).sleep(1000)
elif mode == "hog":
    hog = bytearray(3 * 1024**3)
    print("all good")
    sys.exit(101)
elif mode == "chang":
    print("hanging in libc sleep", file=sys.stderr, flush=True)
    ctypes.CDLL(None).sleep(1000)
sys.exit(104)
