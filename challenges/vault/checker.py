"""Checker for `vault`: accounts, tokens, private items and sealed envelopes over TCP lines.

Flag store 1: a private item (public flag id: the owner's name).
Flag store 2: a sealed envelope (public flag id: the envelope id).
"""

from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path

# Run as a script, this folder heads sys.path and checker.py would shadow the `checker` package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from checker.lib import (  # noqa: E402
    Checker,
    Corrupt,
    LineSocket,
    Mumble,
    Status,
    main,
    rand_password,
    rand_string,
    rand_text,
    rand_user,
)

PORT = 8002
TOKEN_RE = re.compile(r"\S+\.[0-9a-f]{32}")
LABELS = ("pin", "wifi", "bank", "locker", "server", "router", "email", "door", "safe", "bike")


class VaultChecker(Checker):
    """Talks to vault like its command line client does, with random data and order."""

    vulns = [1, 1]
    timeout = 10

    def _session(self) -> LineSocket:
        conn = self.connect(PORT)
        self.assert_true(conn.recv_line().startswith("vault "), "wrong greeting")
        return conn

    def _ask(self, conn: LineSocket, line: str) -> str:
        """Send one command; return the text after ``OK``, or Mumble on anything else."""
        conn.send_line(line)
        answer = conn.recv_line()
        if answer != "OK" and not answer.startswith("OK "):
            raise Mumble(f"{line.split()[0]} failed", f"{line[:80]!r} -> {answer[:200]!r}")
        return answer[3:]

    def _refused(self, conn: LineSocket, line: str, what: str) -> None:
        conn.send_line(line)
        self.assert_true(conn.recv_line().startswith("ERR"), f"{what} not refused")

    def _account(self, conn: LineSocket) -> tuple[str, str, str]:
        name, password = rand_user(), rand_password()
        token = self._ask(conn, f"REGISTER {name} {password}")
        self.assert_true(TOKEN_RE.fullmatch(token) and token.startswith(name + "."), "bad token", token)
        return name, password, token

    def _login(self, data: dict) -> LineSocket:
        """A new connection logged in as the flag's owner, by password or by saved token."""
        conn = self._session()
        line = random.choice([f"LOGIN {data['name']} {data['password']}", f"AUTH {data['token']}"])
        conn.send_line(line)
        answer = conn.recv_line()
        if not answer.startswith("OK"):
            raise Corrupt("owner of the flag cannot log in", f"{line.split()[0]} -> {answer[:200]!r}")
        return conn

    # -- actions ---------------------------------------------------------------------
    def check(self) -> None:
        """Items, tokens, envelopes and their owner checks, in shuffled order."""
        conn = self._session()
        name, password, token = self._account(conn)
        items = {label: rand_text(4) for label in random.sample(LABELS, random.randint(2, 4))}
        for label, value in items.items():
            self._ask(conn, f"PUT {label} {value}")
        secret = rand_text()

        def items_back() -> None:
            self.assert_eq(set(self._ask(conn, "LIST").split()), set(items), "LIST wrong")
            label = random.choice(list(items))
            self.assert_eq(self._ask(conn, f"GET {label}"), items[label], "GET wrong")

        def token_resume() -> None:
            other = self._session()
            self.assert_eq(self._ask(other, f"AUTH {token}"), name, "AUTH wrong")
            self.assert_eq(self._ask(other, "WHOAMI"), name, "WHOAMI wrong")
            self._refused(other, f"LOGIN {name} {password}x", "wrong password")
            self._refused(other, f"AUTH {name}.{rand_string(32, '0123456789abcdef')}", "forged token")

        def envelope() -> None:
            box_id = self._ask(conn, f"SEAL {secret}")
            self.assert_true(re.fullmatch(r"[0-9a-f]{16}", box_id), "bad envelope id", box_id)
            stranger = self._session()
            receipt = self._ask(stranger, f"PEEK {box_id}")
            self.assert_true(re.fullmatch(r"[0-9a-f]*", receipt), "receipt not hex", receipt)
            self.assert_eq(len(receipt), 2 * len(secret.encode()), "receipt has wrong length")
            self.assert_true(receipt != secret.encode().hex(), "envelope not encrypted")
            self._account(stranger)
            self._refused(stranger, f"OPEN {box_id}", "OPEN by a stranger")
            self.assert_eq(self._ask(conn, f"OPEN {box_id}"), secret, "OPEN wrong")

        steps = [items_back, token_resume, envelope]
        random.shuffle(steps)
        for step in steps:
            step()
        conn.send_line("QUIT")

    def put(self, flag_id: str, flag: str, vuln: int) -> dict:
        """Store the flag as a private item (1) or seal it in an envelope (2)."""
        conn = self._session()
        name, password, token = self._account(conn)
        data = {"name": name, "password": password, "token": token}
        if vuln == 1:
            data["label"] = random.choice(LABELS)
            self._ask(conn, f"PUT {data['label']} {flag}")
            return {"public_flag_id": name, **data}
        data["box"] = self._ask(conn, f"SEAL {flag}")
        return {"public_flag_id": data["box"], **data}

    def get(self, flag_id: str, flag: str, vuln: int) -> None:
        """Log in as the owner and read the flag back."""
        data = json.loads(flag_id)
        conn = self._login(data)
        line = f"GET {data['label']}" if vuln == 1 else f"OPEN {data['box']}"
        conn.send_line(line)
        answer = conn.recv_line()
        self.assert_eq(answer, f"OK {flag}", "flag is gone", f"{line} -> {answer[:200]!r}", Status.CORRUPT)


if __name__ == "__main__":
    main(VaultChecker)
