"""Checker for `pinger`: health only, the flag is a file the platform writes (flag_mode file).

`check` runs real diagnostics through the JSON API and the HTML form, checks the history,
and that the flag file is still in place (deleting it is no defence). `put` and `get` run
the same check: there is no flag store inside the service.
"""

from __future__ import annotations

import random
import re
import sys
from pathlib import Path

# Run as a script, this folder heads sys.path and checker.py would shadow the `checker` package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from checker.lib import Checker, HttpSession, main  # noqa: E402

PORT = 8004
LOCAL_NAMES = ("localhost", "127.0.0.1")
LOCALHOST_LINE = re.compile(r"^(127\.0\.0\.1|::1)\s+(\S+\s+)*localhost\b", re.M)


class PingerChecker(Checker):
    """Runs a random mix of lookups and port probes, by API and by form."""

    vulns = [1]
    timeout = 15

    def _lookup(self, http: HttpSession, name: str) -> None:
        if random.random() < 0.5:
            resp = http.get("/api/lookup", params={"host": name})
            self.assert_eq(resp.status_code, 200, "lookup failed", resp.text[:200])
            result = http.json_of(resp)
            self.assert_eq((result.get("host"), result.get("found")), (name, True), "lookup wrong", str(result))
            output = result.get("output", "")
        else:
            resp = http.post("/diag", data={"tool": "lookup", "target": name})
            self.assert_eq(resp.status_code, 200, "diagnostics form failed", resp.text[:200])
            found = re.search(r"<pre id=result>(.*?)</pre>", resp.text, re.S)
            self.assert_true(found, "diagnostics form shows no result")
            output = found.group(1) if found else ""
        self.assert_true(LOCALHOST_LINE.search(output), "lookup answer wrong", output[:200])

    def _closed_port(self, http: HttpSession) -> None:
        port = random.randint(40000, 60000)
        if random.random() < 0.5:
            result = http.json_of(http.get("/api/tcp", params={"host": "127.0.0.1", "port": port}))
            self.assert_eq((result.get("port"), result.get("open")), (port, False), "tcp probe wrong", str(result))
        else:
            resp = http.post("/diag", data={"tool": "tcp", "target": "127.0.0.1", "port": str(port)})
            self.assert_in(f"127.0.0.1:{port} is closed", resp.text, "tcp probe form wrong")

    def check(self) -> None:
        """Front page, lookups, a port probe, history and the flag file, in random order."""
        http = self.http(PORT)
        names = random.sample(LOCAL_NAMES, k=random.randint(1, 2))
        steps = [lambda n=n: self._lookup(http, n) for n in names] + [lambda: self._closed_port(http)]
        random.shuffle(steps)
        page = http.get("/")
        self.assert_true(page.status_code == 200 and 'action=/diag' in page.text, "front page broken")
        for step in steps:
            step()
        history = http.json_of(http.get("/api/history"))
        self.assert_true(isinstance(history, list) and history, "history empty")
        recent = {entry.get("target") for entry in history[: len(steps) + 5] if isinstance(entry, dict)}
        self.assert_true(set(names) <= recent, "history misses lookups", f"{names} not in {recent}")
        status = http.json_of(http.get("/api/status"))
        self.assert_eq(status.get("flag"), "present", "flag file missing or unreadable")

    def put(self, flag_id: str, flag: str, vuln: int) -> None:
        """The platform writes the flag file; only check the service."""
        self.check()

    def get(self, flag_id: str, flag: str, vuln: int) -> None:
        """The platform owns the flag file; only check the service."""
        self.check()


if __name__ == "__main__":
    main(PingerChecker)
