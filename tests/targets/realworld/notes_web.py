"""A small notes web app, the target of the real-world checkers beside this file.

Users register and log in through HTML forms, get a ``session`` cookie and keep notes,
private or public; every form carries a CSRF token, as web frameworks do:

    GET  /                 the newest public notes, links to register and log in
    GET  /register         form (username, password)  POST: 302 /login, or 409 when taken
    GET  /login            form                        POST: 302 /notes with a session cookie, or 403
    GET  /notes            own notes and a new-note form (title, body, public, csrf)
    POST /notes            302 /notes/<id>
    GET  /notes/<id>       the note (its owner, or anyone when public), else 404
    GET  /logout           302 /

`mode` changes its behaviour while it runs: "ok"; "forgetful" (takes notes and loses them
all: a flag GET is CORRUPT); "garbling" (shows note bodies mangled: CHECK is MUMBLE, a flag
GET CORRUPT). Serve it from a thread with `NotesWeb.start()`, on any loopback address.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import re
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from tests.targets.threaded import Threaded, serving_all

PORT = 17380
NOTE_PATH = re.compile(r"^/notes/([0-9a-f]{16})$")


@dataclass
class Note:
    """One stored note."""

    owner: str
    title: str
    body: str
    public: bool


class _Handler(BaseHTTPRequestHandler):
    server: NotesWeb
    protocol_version = "HTTP/1.1"
    timeout = 10  # seconds an idle keep-alive connection is kept
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms wait for an ACK

    def do_GET(self) -> None:
        web, user = self.server, self._user()
        if self.path == "/":
            items = "".join(f'<li><a href="/notes/{i}">{html.escape(n.title)}</a> by {html.escape(n.owner)}</li>'
                            for i, n in web.public_notes(20))
            self._page("Notes", '<a href="/register">Register</a> <a href="/login">Log in</a>'
                                f'<ul id="public">{items}</ul>')
        elif self.path in ("/register", "/login"):
            self._page(self.path[1:].title(), _form(self.path, ("username", "text"), ("password", "password")))
        elif self.path == "/logout":
            self._redirect("/", cookie="session=; Max-Age=0; Path=/")
        elif self.path == "/notes" and user is None:
            self._redirect("/login")
        elif self.path == "/notes":
            items = "".join(f'<li><a href="/notes/{i}">{html.escape(n.title)}</a></li>' for i, n in web.notes_of(user))
            form = _form("/notes", ("title", "text"), ("body", "text"), ("public", "checkbox"),
                         ("csrf", "hidden", web.csrf(user)))
            self._page(f"Notes of {user}", f'<ul id="notes">{items}</ul>{form}')
        elif (match := NOTE_PATH.match(self.path)) and (note := web.note(match[1], user)):
            self._page(note.title, f'<h2 class="owner">{html.escape(note.owner)}</h2>'
                                   f'<div class="body">{html.escape(note.body)}</div>')
        else:
            self._page("Not found", "<p>No such page.</p>", 404)

    def do_POST(self) -> None:
        web, user = self.server, self._user()
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode(errors="replace")).items()}
        name, password = form.get("username", ""), form.get("password", "")
        if self.path == "/register":
            if not name or not password:
                self._page("Register", "<p>Username and password are required.</p>", 400)
            elif web.register(name, password):
                self._redirect("/login")
            else:
                self._page("Register", "<p>This username is taken.</p>", 409)
        elif self.path == "/login":
            token = web.login(name, password)
            if token is None:
                self._page("Log in", '<p class="error">Wrong username or password.</p>', 403)
            else:
                self._redirect("/notes", cookie=f"session={token}; HttpOnly; Path=/")
        elif self.path == "/notes" and user is not None:
            if form.get("csrf") != web.csrf(user) or not form.get("title"):
                self._page("Notes", "<p>Bad form.</p>", 400)
            else:
                note = Note(user, form["title"], form.get("body", ""), form.get("public") == "on")
                self._redirect(f"/notes/{web.add(note)}")
        else:
            self._page("Forbidden", "<p>Log in first.</p>", 403)

    def _user(self) -> str | None:
        try:
            morsel = SimpleCookie(self.headers.get("Cookie", "")).get("session")
        except CookieError:
            return None
        return self.server.sessions.get(morsel.value) if morsel else None

    def _page(self, title: str, content: str, code: int = 200) -> None:
        body = (f"<!DOCTYPE html><html><head><title>{html.escape(title)}</title></head>"
                f"<body><h1>{html.escape(title)}</h1>{content}</body></html>").encode()
        self._send(code, body, {"Content-Type": "text/html; charset=utf-8"})

    def _redirect(self, where: str, cookie: str | None = None) -> None:
        self._send(302, b"", {"Location": where, **({"Set-Cookie": cookie} if cookie else {})})

    def _send(self, code: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(code)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _form(action: str, *fields: tuple[str, ...]) -> str:
    """An HTML form posting `fields` ((name, type) or (name, type, value)) to `action`."""
    inputs = "".join(f'<input name="{f[0]}" type="{f[1]}"' + (f' value="{html.escape(f[2])}"' if len(f) > 2 else "")
                     + ">" for f in fields)
    return f'<form method="post" action="{action}">{inputs}<button type="submit">Send</button></form>'


class NotesWeb(Threaded, ThreadingHTTPServer):
    """The notes web app on (host, port): `users` (name to password hash), `sessions`, `notes`."""

    def __init__(self, host: str, port: int = PORT) -> None:
        super().__init__((host, port), _Handler)
        self.mode = "ok"
        self.users: dict[str, str] = {}
        self.sessions: dict[str, str] = {}
        self.notes: dict[str, Note] = {}
        self._secret = secrets.token_bytes(16)
        self._lock = threading.Lock()

    def register(self, name: str, password: str) -> bool:
        """Add a user; False when the name is taken."""
        with self._lock:
            if name in self.users:
                return False
            self.users[name] = self._hash(password)
            return True

    def login(self, name: str, password: str) -> str | None:
        """A new session token for a right password, else None."""
        if self.users.get(name) != self._hash(password):
            return None
        token = secrets.token_urlsafe(24)
        self.sessions[token] = name
        return token

    def csrf(self, user: str) -> str:
        """The CSRF token of `user`'s forms."""
        return hashlib.sha256(self._secret + user.encode()).hexdigest()[:32]

    def add(self, note: Note) -> str:
        """Store `note` (unless forgetful); its id."""
        note_id = secrets.token_hex(8)
        if self.mode != "forgetful":
            self.notes[note_id] = note
        return note_id

    def note(self, note_id: str, user: str | None) -> Note | None:
        """The note `user` may read under `note_id`, as this target shows it."""
        note = None if self.mode == "forgetful" else self.notes.get(note_id)
        if note is None or not (note.public or note.owner == user):
            return None
        if self.mode == "garbling":
            return Note(note.owner, note.title, note.body[::-1][: len(note.body) // 2], note.public)
        return note

    def notes_of(self, user: str) -> list[tuple[str, Note]]:
        """`user`'s notes, oldest first."""
        return [(i, n) for i, n in list(self.notes.items()) if n.owner == user and self.mode != "forgetful"]

    def public_notes(self, count: int) -> list[tuple[str, Note]]:
        """The newest `count` public notes."""
        return [(i, n) for i, n in list(self.notes.items()) if n.public][-count:][::-1]

    def _hash(self, password: str) -> str:
        return hashlib.sha256(self._secret + password.encode()).hexdigest()


@contextlib.contextmanager
def serving_notes_web(*hosts: str, port: int = PORT) -> Iterator[list[NotesWeb]]:
    """Started `NotesWeb` targets, one per host, stopped afterwards (unless already stopped)."""
    with serving_all([NotesWeb(host, port) for host in hosts]) as servers:
        yield list(servers)
