"""checker.lib checker for the notes store (tests/targets/notes_tcp.py); also a CLI checker."""

import json

from checker.lib import Checker, Corrupt, Mumble, main, rand_text

PORT = 17301


class NotesChecker(Checker):
    vulns = [1, 2]
    timeout = 5

    def check(self) -> None:
        with self.connect(PORT) as conn:
            conn.send_line("PING")
            self.assert_eq(conn.recv_line(), "PONG", "ping does not work")
            text = rand_text()
            note_id = self._store(conn, text)
            conn.send_line(f"GET {note_id}")
            self.assert_eq(conn.recv_line(), f"NOTE {text}", "notes are not kept")

    def put(self, flag_id: str, flag: str, vuln: int) -> str | dict:
        with self.connect(PORT) as conn:
            note_id = self._store(conn, flag)
        if vuln == 2:
            return {"public_flag_id": note_id[:4], "note": note_id}
        return note_id

    def get(self, flag_id: str, flag: str, vuln: int) -> None:
        note_id = json.loads(flag_id)["note"] if vuln == 2 else flag_id
        with self.connect(PORT) as conn:
            conn.send_line(f"GET {note_id}")
            answer = conn.recv_line()
        if answer == "NONE":
            raise Corrupt("flag is missing", f"note {note_id} not found")
        self.assert_true(answer.startswith("NOTE "), "bad answer to GET", answer)
        if answer[5:] != flag:
            raise Corrupt("flag is wrong", f"note {note_id} holds {answer[5:]!r}")

    def _store(self, conn, text: str) -> str:
        conn.send_line(f"PUT {text}")
        answer = conn.recv_line()
        if not answer.startswith("ID "):
            raise Mumble("cannot store a note", f"PUT answered {answer!r}")
        return answer[3:]


if __name__ == "__main__":
    main(NotesChecker)
