"""notes: a small HTTP notes service with user profiles (adrange sample challenge).

JSON in, JSON out; after login send ``Authorization: Bearer TOKEN``.

    POST /api/register      {"username", "password"}            -> {"ok": true}
    POST /api/login         {"username", "password"}            -> {"token", "role"} + cookie role
    GET  /api/me                                                 -> own profile, private field included
    PUT  /api/me            {"bio", "secret"}                    -> {"ok": true}
    GET  /api/users/NAME                                         -> public profile (moderators see more)
    POST /api/notes         {"title", "content", "public"}       -> {"id"}
    GET  /api/notes                                              -> own notes [{"id", "title", "public"}]
    GET  /api/notes/public                                       -> the latest public notes
    GET  /api/notes/ID                                           -> one note

Run: ``python3 app.py --host 0.0.0.0 --port 8001 --data /srv/notes/data``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY, salt TEXT NOT NULL, pwhash TEXT NOT NULL,
    role TEXT NOT NULL DEFAULT 'user', bio TEXT NOT NULL DEFAULT '', secret TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS sessions (token TEXT PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS notes (
    id INTEGER PRIMARY KEY AUTOINCREMENT, owner TEXT NOT NULL, title TEXT NOT NULL,
    content TEXT NOT NULL, public INTEGER NOT NULL DEFAULT 0);
"""
NAME_RE = re.compile(r"[A-Za-z0-9_.-]{3,40}")
MAX_BODY = 64 * 1024


class ApiError(Exception):
    """An error answered as ``{"error": message}`` with an HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Store:
    """All database access of the service: one short-lived connection per call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with self._db() as db:
            db.executescript(SCHEMA)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=10)
        db.row_factory = sqlite3.Row
        try:
            with db:
                yield db
        finally:
            db.close()

    def add_user(self, name: str, password: str) -> bool:
        salt = secrets.token_hex(8)
        try:
            with self._db() as db:
                db.execute("INSERT INTO users (name, salt, pwhash) VALUES (?, ?, ?)",
                           (name, salt, _hash(salt, password)))
        except sqlite3.IntegrityError:
            return False
        return True

    def user(self, name: str) -> sqlite3.Row | None:
        with self._db() as db:
            return db.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()

    def new_session(self, name: str) -> str:
        token = secrets.token_hex(16)
        with self._db() as db:
            db.execute("INSERT INTO sessions VALUES (?, ?)", (token, name))
        return token

    def session_user(self, token: str) -> str | None:
        with self._db() as db:
            row = db.execute("SELECT name FROM sessions WHERE token = ?", (token,)).fetchone()
        return row["name"] if row else None

    def set_profile(self, name: str, bio: str, secret: str) -> None:
        with self._db() as db:
            db.execute("UPDATE users SET bio = ?, secret = ? WHERE name = ?", (bio, secret, name))

    def add_note(self, owner: str, title: str, content: str, public: bool) -> int:
        with self._db() as db:
            cur = db.execute("INSERT INTO notes (owner, title, content, public) VALUES (?, ?, ?, ?)",
                             (owner, title, content, int(public)))
            return int(cur.lastrowid or 0)

    def note(self, note_id: int) -> sqlite3.Row | None:
        with self._db() as db:
            return db.execute("SELECT * FROM notes WHERE id = ?", (note_id,)).fetchone()

    def notes_of(self, owner: str) -> list[sqlite3.Row]:
        with self._db() as db:
            return db.execute("SELECT id, title, public FROM notes WHERE owner = ? ORDER BY id",
                              (owner,)).fetchall()

    def public_notes(self, limit: int = 50) -> list[sqlite3.Row]:
        with self._db() as db:
            return db.execute("SELECT id, owner, title FROM notes WHERE public = 1 ORDER BY id DESC LIMIT ?",
                              (limit,)).fetchall()


def _hash(salt: str, password: str) -> str:
    return hashlib.sha256((salt + password).encode()).hexdigest()


class Handler(BaseHTTPRequestHandler):
    """Routes each request to a method of `Api`."""

    server_version = "notes/1.2"
    store: Store

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a busy game would fill the disk with access logs."""

    def _dispatch(self, method: str) -> None:
        headers: list[tuple[str, str]] = []
        try:
            status, body = self._route(method, self.path.split("?", 1)[0], headers)
        except ApiError as exc:
            status, body = exc.status, {"error": str(exc)}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _route(self, method: str, path: str, headers: list[tuple[str, str]]) -> tuple[int, Any]:
        if (method, path) == ("POST", "/api/register"):
            return self.register()
        if (method, path) == ("POST", "/api/login"):
            return self.login(headers)
        if path == "/api/me" and method in ("GET", "PUT"):
            return self.me(method)
        if method == "GET" and path.startswith("/api/users/"):
            return self.profile(path.removeprefix("/api/users/"))
        if path == "/api/notes" and method in ("GET", "POST"):
            return self.list_notes() if method == "GET" else self.create_note()
        if method == "GET" and path == "/api/notes/public":
            return 200, [dict(row) for row in self.store.public_notes()]
        if method == "GET" and re.fullmatch(r"/api/notes/\d+", path):
            return self.read_note(int(path.rsplit("/", 1)[1]))
        if method == "GET" and path == "/":
            return 200, {"service": "notes", "version": self.server_version}
        raise ApiError(404, "not found")

    # -- helpers -------------------------------------------------------------------
    def _json(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ApiError(413, "body too large")
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            raise ApiError(400, "body must be JSON") from None
        if not isinstance(body, dict):
            raise ApiError(400, "body must be a JSON object")
        return body

    def _field(self, body: dict[str, Any], key: str, limit: int = 4096) -> str:
        value = body.get(key, "")
        if not isinstance(value, str) or len(value) > limit:
            raise ApiError(400, f"{key} must be a string of at most {limit} characters")
        return value

    def _user(self, required: bool = True) -> str | None:
        auth = self.headers.get("Authorization", "")
        name = self.store.session_user(auth[7:]) if auth.startswith("Bearer ") else None
        if name is None and required:
            raise ApiError(401, "login required")
        return name

    def _cookie(self, key: str) -> str | None:
        cookie = SimpleCookie(self.headers.get("Cookie", ""))
        return cookie[key].value if key in cookie else None

    # -- endpoints -----------------------------------------------------------------
    def register(self) -> tuple[int, Any]:
        body = self._json()
        name, password = self._field(body, "username"), self._field(body, "password", 128)
        if not NAME_RE.fullmatch(name) or len(password) < 6:
            raise ApiError(400, "username: 3-40 of [A-Za-z0-9_.-]; password: at least 6 characters")
        if not self.store.add_user(name, password):
            raise ApiError(409, "username taken")
        return 200, {"ok": True}

    def login(self, headers: list[tuple[str, str]]) -> tuple[int, Any]:
        body = self._json()
        user = self.store.user(self._field(body, "username"))
        if user is None or user["pwhash"] != _hash(user["salt"], self._field(body, "password", 128)):
            raise ApiError(403, "wrong username or password")
        headers.append(("Set-Cookie", f"role={user['role']}; Path=/; HttpOnly"))
        return 200, {"token": self.store.new_session(user["name"]), "role": user["role"]}

    def me(self, method: str) -> tuple[int, Any]:
        name = self._user()
        assert name is not None
        if method == "PUT":
            body = self._json()
            self.store.set_profile(name, self._field(body, "bio"), self._field(body, "secret"))
            return 200, {"ok": True}
        user = self.store.user(name)
        if user is None:
            raise ApiError(404, "no such user")
        return 200, {"username": name, "role": user["role"], "bio": user["bio"], "secret": user["secret"]}

    def profile(self, name: str) -> tuple[int, Any]:
        self._user()
        user = self.store.user(name)
        if user is None:
            raise ApiError(404, "no such user")
        view = {"username": user["name"], "bio": user["bio"]}
        # Moderators review full profiles.
        if self._cookie("role") == "admin":
            view["secret"] = user["secret"]
        return 200, view

    def list_notes(self) -> tuple[int, Any]:
        name = self._user()
        return 200, [{"id": r["id"], "title": r["title"], "public": bool(r["public"])}
                     for r in self.store.notes_of(name or "")]

    def create_note(self) -> tuple[int, Any]:
        name = self._user()
        body = self._json()
        title, content = self._field(body, "title", 200), self._field(body, "content")
        if not title:
            raise ApiError(400, "title required")
        note_id = self.store.add_note(name or "", title, content, bool(body.get("public")))
        return 200, {"id": note_id}

    def read_note(self, note_id: int) -> tuple[int, Any]:
        name = self._user(required=False)
        note = self.store.note(note_id)
        if note is None:
            raise ApiError(404, "no such note")
        if not note["public"] and name is None:
            raise ApiError(403, "this note is private")
        return 200, {"id": note["id"], "owner": note["owner"], "title": note["title"],
                     "content": note["content"], "public": bool(note["public"])}


def main() -> None:
    """Parse arguments and serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parent / "data")
    args = parser.parse_args()
    args.data.mkdir(parents=True, exist_ok=True)
    Handler.store = Store(args.data / "notes.db")
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
