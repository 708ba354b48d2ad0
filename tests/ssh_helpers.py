"""A player at a shell: ssh and scp into a team's box with its password (SSH_ASKPASS; no
sshpass needed), no host key checks."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

OPTIONS = ["StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null", "PreferredAuthentications=password",
           "PubkeyAuthentication=no", "NumberOfPasswordPrompts=1", "ConnectTimeout=10", "LogLevel=ERROR"]


def _run(argv: list[str], password: str, work: Path) -> subprocess.CompletedProcess:
    askpass = work / "askpass.sh"
    askpass.write_text('#!/bin/sh\necho "$ADRANGE_TEST_PASSWORD"\n')
    askpass.chmod(0o700)
    env = {**os.environ, "SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force", "DISPLAY": "none",
           "ADRANGE_TEST_PASSWORD": password}
    options = [arg for opt in OPTIONS for arg in ("-o", opt)]
    return subprocess.run([argv[0], *options, *argv[1:]], env=env, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=60)


def ssh(host: str, port: int, password: str, command: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run `command` in the box as the team user."""
    return _run(["ssh", "-p", str(port), f"team@{host}", command], password, tmp_path)


def scp(host: str, port: int, password: str, files: list[Path], tmp_path: Path) -> subprocess.CompletedProcess:
    """Copy `files` into the team user's home in the box."""
    return _run(["scp", "-P", str(port), *map(str, files), f"team@{host}:"], password, tmp_path)
