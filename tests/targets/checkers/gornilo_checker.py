"""A checker written with HackerDom's gornilo (from PyPI), for the notes store."""

import json
import socket

from gornilo import CheckRequest, GetRequest, NewChecker, PutRequest, Verdict, VulnChecker

checker = NewChecker()
PORT = 17301


def talk(host: str, line: str) -> str:
    with socket.create_connection((host, PORT), timeout=3) as sock:
        sock.sendall((line + "\n").encode())
        return sock.makefile().readline().strip()


@checker.define_check
def check(request: CheckRequest) -> Verdict:
    try:
        answer = talk(request.hostname, "PING")
    except OSError:
        return Verdict.DOWN("connection failed")
    return Verdict.OK() if answer == "PONG" else Verdict.MUMBLE("bad ping")


@checker.define_vuln("note id prefix")
class NoteVuln(VulnChecker):
    @staticmethod
    def put(request: PutRequest) -> Verdict:
        try:
            answer = talk(request.hostname, "PUT " + request.flag)
        except OSError:
            return Verdict.DOWN("connection failed")
        note_id = answer[3:]
        return Verdict.OK_WITH_FLAG_ID(note_id[:4], json.dumps({"note": note_id}))

    @staticmethod
    def get(request: GetRequest) -> Verdict:
        note_id = json.loads(request.flag_id)["note"]
        try:
            answer = talk(request.hostname, "GET " + note_id)
        except OSError:
            return Verdict.DOWN("connection failed")
        return Verdict.OK() if answer == "NOTE " + request.flag else Verdict.CORRUPT("flag lost")


if __name__ == "__main__":
    checker.run()
