"""The notes web app's pages and forms, for the checker (ForcAD's CheckMachine)."""

import requests
from bs4 import BeautifulSoup
from checklib import BaseChecker, Status

PORT = 17380
TIMEOUT = 3


class CheckMachine:
    def __init__(self, checker: BaseChecker):
        self.c = checker
        self.url = f"http://{checker.host}:{PORT}"

    def register(self, s: requests.Session, username: str, password: str) -> None:
        r = s.post(f"{self.url}/register", data={"username": username, "password": password}, timeout=TIMEOUT)
        self.c.check_response(r, "Could not register")
        self.c.assert_(r.url.endswith("/login"), "Registration does not lead to the login page")

    def login(self, s: requests.Session, username: str, password: str, status: Status = Status.MUMBLE) -> None:
        r = s.post(f"{self.url}/login", data={"username": username, "password": password}, timeout=TIMEOUT)
        self.c.check_response(r, "Could not log in", status)
        self.c.assert_in("session", s.cookies, "No session after login", status)

    def add_note(self, s: requests.Session, title: str, body: str, public: bool) -> str:
        form = self.page(s, "/notes", "Could not open notes").find("form", action="/notes")
        csrf = form.find("input", attrs={"name": "csrf"}) if form else None
        self.c.assert_(csrf is not None and csrf.get("value"), "No note form")
        data = {"title": title, "body": body, "csrf": csrf["value"], **({"public": "on"} if public else {})}
        r = s.post(f"{self.url}/notes", data=data, timeout=TIMEOUT)
        self.c.check_response(r, "Could not add a note")
        return r.url.rsplit("/", 1)[-1]

    def note_links(self, s: requests.Session, path: str, list_id: str) -> list[str]:
        listing = self.page(s, path, "Could not list notes").find("ul", id=list_id)
        self.c.assert_(listing is not None, "No note list")
        return [a["href"].rsplit("/", 1)[-1] for a in listing.find_all("a", href=True)]

    def read_note(self, s: requests.Session, note_id: str, status: Status = Status.MUMBLE) -> str:
        body = self.page(s, f"/notes/{note_id}", "Could not read a note", status).find("div", class_="body")
        self.c.assert_(body is not None, "Note page has no body", status)
        return body.get_text()

    def page(self, s: requests.Session, path: str, public: str, status: Status = Status.MUMBLE) -> BeautifulSoup:
        r = s.get(f"{self.url}{path}", timeout=TIMEOUT)
        self.c.check_response(r, public, status)
        return BeautifulSoup(self.c.get_text(r, public, status), "html.parser")
