#!/usr/bin/env python3
"""Checker of the notes web app on HackerDom's gornilo 0.9, requests and bs4.

A flag is a private note of a fresh user; the user's name is published as attack data.
"""

import json
import secrets

from bs4 import BeautifulSoup
from gornilo import CheckRequest, GetRequest, NewChecker, PutRequest, Verdict, VulnChecker
from gornilo.http_clients import requests_with_retries

checker = NewChecker()
PORT = 17380


class Mumble(Exception):
    """The service answered, but not as it should."""


class User:
    """One user's browser on a team's notes app."""

    def __init__(self, host: str, name: str = "", password: str = ""):
        self.url = f"http://{host}:{PORT}"
        self.name, self.password = name or secrets.token_hex(6), password or secrets.token_hex(10)
        self.session = requests_with_retries(retries=2, status_forcelist=(502, 503), default_timeout=3)

    def register(self) -> "User":
        self.send("/register", username=self.name, password=self.password)
        return self

    def login(self) -> "User":
        self.send("/login", username=self.name, password=self.password)
        if "session" not in self.session.cookies:
            raise Mumble("no session after login")
        return self

    def add_note(self, body: str, public: bool = False) -> str:
        csrf = self.page("/notes").select_one('form[action="/notes"] input[name="csrf"]')
        if csrf is None:
            raise Mumble("no note form")
        fields = {"title": secrets.token_hex(5), "body": body, "csrf": csrf["value"]}
        return self.send("/notes", **fields, **({"public": "on"} if public else {})).rsplit("/", 1)[-1]

    def read_note(self, note_id: str) -> str:
        body = self.page(f"/notes/{note_id}").select_one("div.body")
        if body is None:
            raise Mumble("note page has no body")
        return body.get_text()

    def page(self, path: str) -> BeautifulSoup:
        response = self.session.get(self.url + path)
        if response.status_code != 200:
            raise Mumble(f"GET {path}: {response.status_code}")
        return BeautifulSoup(response.text, "html.parser")

    def send(self, path: str, **form: str) -> str:
        """POST `form` to `path`; the URL it led to."""
        response = self.session.post(self.url + path, data=form)
        if response.status_code != 200:
            raise Mumble(f"POST {path}: {response.status_code}")
        return response.url


@checker.define_check
def check(request: CheckRequest) -> Verdict:
    try:
        user = User(request.hostname).register().login()
        body = secrets.token_hex(16)
        if User(request.hostname).read_note(user.add_note(body, public=True)) != body:
            return Verdict.MUMBLE("public note differs")
    except Mumble as error:
        return Verdict.MUMBLE(str(error))
    return Verdict.OK()


@checker.define_vuln("note owner's name")
class NoteVuln(VulnChecker):
    @staticmethod
    def put(request: PutRequest) -> Verdict:
        try:
            user = User(request.hostname).register().login()
            note_id = user.add_note(request.flag)
        except Mumble as error:
            return Verdict.MUMBLE(str(error))
        return Verdict.OK_WITH_FLAG_ID(user.name, json.dumps([user.name, user.password, note_id]))

    @staticmethod
    def get(request: GetRequest) -> Verdict:
        name, password, note_id = json.loads(request.flag_id)
        try:
            if User(request.hostname, name, password).login().read_note(note_id) != request.flag:
                return Verdict.CORRUPT("flag differs")
        except Mumble as error:
            return Verdict.CORRUPT(str(error))
        return Verdict.OK()


if __name__ == "__main__":
    checker.run()
