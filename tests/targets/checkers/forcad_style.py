#!/usr/bin/env python3
"""A checker in the ForcAD checklib style: its own argv parsing, prints, sys.exit codes.

Like many public checkers it sets no socket timeout, so it hangs on a silent service.
"""

import socket
import sys

OK, CORRUPT, MUMBLE, DOWN, CHECKER_ERROR = 101, 102, 103, 104, 110
PORT = 17301


def cquit(code, public="", private=""):
    sys.stdout.write(public)
    sys.stderr.write(private)
    sys.exit(code)


def talk(host, line):
    try:
        sock = socket.create_connection((host, PORT))
    except OSError as e:
        cquit(DOWN, "Connection error", str(e))
    sock.sendall((line + "\n").encode())
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(1024)
        if not chunk:
            cquit(MUMBLE, "Connection closed", repr(data))
        data += chunk
    sock.close()
    return data.decode().strip()


def main():
    action, *args = sys.argv[1:]
    host = args[0]
    if action == "check":
        if talk(host, "PING") != "PONG":
            cquit(MUMBLE, "Ping failed")
        cquit(OK)
    if action == "put":
        flag = args[2]
        answer = talk(host, "PUT " + flag)
        if not answer.startswith("ID "):
            cquit(MUMBLE, "Could not put flag", answer)
        cquit(OK, answer[3:])
    if action == "get":
        flag_id, flag = args[1], args[2]
        answer = talk(host, "GET " + flag_id)
        if answer != "NOTE " + flag:
            cquit(CORRUPT, "Flag not found", answer)
        cquit(OK)
    cquit(CHECKER_ERROR, "Unknown action", action)


if __name__ == "__main__":
    main()
