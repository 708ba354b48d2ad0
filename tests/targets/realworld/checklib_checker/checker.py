#!/usr/bin/env python3
"""Checker of the notes web app, as ForcAD organizers write them: checklib, requests, bs4.

A flag is a private note of a fresh user; its flag id is ``user:password:note``.
"""

import sys

import requests
from checklib import BaseChecker, Status, cquit, rnd_password, rnd_string, rnd_username
from notes_lib import CheckMachine


class Checker(BaseChecker):
    vulns: int = 1
    timeout: int = 10
    uses_attack_data: bool = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.mch = CheckMachine(self)

    def action(self, action, *args, **kwargs):
        try:
            super().action(action, *args, **kwargs)
        except requests.exceptions.ConnectionError:
            self.cquit(Status.DOWN, "Connection error", "Got requests connection error")

    def check(self):
        s = self.get_initialized_session()
        username, password = rnd_username(), rnd_password()
        self.mch.register(s, username, password)
        self.mch.login(s, username, password)
        body = rnd_string(40)
        note_id = self.mch.add_note(s, rnd_string(12), body, public=True)
        self.assert_in(note_id, self.mch.note_links(s, "/notes", "notes"), "Note is not listed")
        anonymous = self.get_initialized_session()
        self.assert_in(note_id, self.mch.note_links(anonymous, "/", "public"), "Public note is not on the front page")
        self.assert_eq(self.mch.read_note(anonymous, note_id), body, "Public note differs")
        self.cquit(Status.OK)

    def put(self, flag_id, flag, vuln):
        s = self.get_initialized_session()
        username, password = rnd_username(), rnd_password()
        self.mch.register(s, username, password)
        self.mch.login(s, username, password)
        note_id = self.mch.add_note(s, rnd_string(12), flag, public=False)
        self.cquit(Status.OK, f"{username}:{password}:{note_id}")

    def get(self, flag_id, flag, vuln):
        username, password, note_id = flag_id.split(":")
        s = self.get_initialized_session()
        self.mch.login(s, username, password, Status.CORRUPT)
        self.assert_eq(self.mch.read_note(s, note_id, Status.CORRUPT), flag, "Flag differs", Status.CORRUPT)
        self.cquit(Status.OK)


if __name__ == "__main__":
    c = Checker(sys.argv[2])

    try:
        c.action(sys.argv[1], *sys.argv[3:])
    except c.get_check_finished_exception():
        cquit(Status(c.status), c.public, c.private)
