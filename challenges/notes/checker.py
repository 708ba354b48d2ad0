"""Checker for `notes`: accounts, public and private notes, profiles with a private field.

Flag store 1: the content of a private note (public flag id: the note id).
Flag store 2: the private ``secret`` field of a profile (public flag id: the user name).
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

# Run as a script, this folder heads sys.path and checker.py would shadow the `checker` package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from checker.lib import (  # noqa: E402
    Checker,
    Corrupt,
    HttpSession,
    Status,
    main,
    rand_password,
    rand_text,
    rand_user,
)

PORT = 8001


class NotesChecker(Checker):
    """Checks the notes service like a user would, in a shuffled order with random data."""

    vulns = [1, 1]
    timeout = 10

    # -- one user's session ----------------------------------------------------------
    def _register(self, http: HttpSession) -> tuple[str, str]:
        name, password = rand_user(), rand_password()
        resp = http.post("/api/register", json={"username": name, "password": password})
        self.assert_eq(resp.status_code, 200, "cannot register", resp.text[:200])
        return name, password

    def _login(self, http: HttpSession, name: str, password: str, lost: bool = False) -> None:
        resp = http.post("/api/login", json={"username": name, "password": password})
        if resp.status_code == 403 and lost:
            raise Corrupt("user of the flag is gone", f"login {name} refused")
        self.assert_eq(resp.status_code, 200, "cannot log in", resp.text[:200])
        token = http.json_of(resp).get("token")
        self.assert_true(isinstance(token, str) and token, "login gives no token")
        http.headers["Authorization"] = f"Bearer {token}"

    def _user(self) -> tuple[HttpSession, str, str]:
        http = self.http(PORT)
        name, password = self._register(http)
        self._login(http, name, password)
        return http, name, password

    def _post_note(self, http: HttpSession, title: str, content: str, public: bool) -> int:
        resp = http.post("/api/notes", json={"title": title, "content": content, "public": public})
        self.assert_eq(resp.status_code, 200, "cannot create note", resp.text[:200])
        note_id = http.json_of(resp).get("id")
        self.assert_true(isinstance(note_id, int), "note id missing", repr(note_id))
        return note_id

    def _read_note(self, http: HttpSession, note_id: int) -> dict:
        resp = http.get(f"/api/notes/{note_id}")
        self.assert_eq(resp.status_code, 200, "cannot read note", f"note {note_id}: {resp.text[:200]}")
        note = http.json_of(resp)
        self.assert_true(isinstance(note, dict), "note is not an object")
        return note

    # -- actions ---------------------------------------------------------------------
    def check(self) -> None:
        """Two users: profiles, own notes, a shared public note, listings; steps shuffled."""
        alice, alice_name, _ = self._user()
        bob, _, _ = self._user()
        bio, secret = rand_text(), rand_text(4)
        public_text, private_text = rand_text(), rand_text()
        notes: dict[str, int] = {}

        def profile() -> None:
            resp = alice.put("/api/me", json={"bio": bio, "secret": secret})
            self.assert_eq(resp.status_code, 200, "cannot update profile")
            me = alice.json_of(alice.get("/api/me"))
            self.assert_eq((me.get("bio"), me.get("secret")), (bio, secret), "profile not saved")
            seen = bob.json_of(bob.get(f"/api/users/{alice_name}"))
            self.assert_eq(seen.get("bio"), bio, "public profile wrong")
            self.assert_true("secret" not in seen, "public profile shows private field")

        def write_notes() -> None:
            notes["public"] = self._post_note(alice, rand_text(3), public_text, True)
            notes["private"] = self._post_note(alice, rand_text(3), private_text, False)
            listed = {n.get("id") for n in alice.json_of(alice.get("/api/notes"))}
            self.assert_eq(listed, set(notes.values()), "note list wrong")
            self.assert_eq(self._read_note(alice, notes["private"]).get("content"), private_text,
                           "own private note wrong")
            self.assert_eq(self._read_note(bob, notes["public"]).get("content"), public_text,
                           "shared public note wrong")
            latest = [n.get("id") for n in bob.json_of(bob.get("/api/notes/public"))]
            self.assert_in(notes["public"], latest, "public note not listed")
            self.assert_true(notes["private"] not in latest, "private note listed as public")

        steps = [profile, write_notes]
        random.shuffle(steps)
        for step in steps:
            step()

    def put(self, flag_id: str, flag: str, vuln: int) -> dict:
        """Store the flag as a private note (1) or as the private profile field (2)."""
        http, name, password = self._user()
        if vuln == 1:
            note_id = self._post_note(http, rand_text(3), flag, False)
            return {"public_flag_id": str(note_id), "username": name, "password": password, "note": note_id}
        resp = http.put("/api/me", json={"bio": rand_text(), "secret": flag})
        self.assert_eq(resp.status_code, 200, "cannot update profile")
        return {"public_flag_id": name, "username": name, "password": password}

    def get(self, flag_id: str, flag: str, vuln: int) -> None:
        """Log in as the flag's owner and read it back."""
        data = json.loads(flag_id)
        http = self.http(PORT)
        self._login(http, data["username"], data["password"], lost=True)
        if vuln == 1:
            resp = http.get(f"/api/notes/{data['note']}")
            if resp.status_code == 404:
                raise Corrupt("note with the flag is gone")
            note = self._read_note(http, data["note"])
            self.assert_eq(note.get("content"), flag, "flag missing from note", status=Status.CORRUPT)
        else:
            me = http.json_of(http.get("/api/me"))
            self.assert_eq(me.get("secret"), flag, "flag missing from profile", status=Status.CORRUPT)


if __name__ == "__main__":
    main(NotesChecker)
