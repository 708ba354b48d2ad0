"""Revocable sessions: Flask's signed session cookie, backed by a record in Redis.

The cookie still carries the session (team or admin, CSRF token, language), signed with
the game's session key; a logged-in session also carries a random id that must be on
record in Redis, holding who it is for and expiring ``web.session_lifetime`` seconds
after its last use. So:

- logging out deletes the record: a copied cookie is dead on every web node at once;
- `RevocableSessions.revoke_all` deletes every record (everyone logged out);
- the signing key is ``web.session_key`` from the game file, else generated once per game
  and kept in Redis, so every node signs alike and sessions outlive a restart;
  `SessionKey.rotate` replaces it (every node follows within `KEY_REFRESH` seconds) and
  revokes every record. Deleting it from Redis also logs everyone out: the next read
  generates a new one.

Views go on using ``flask.session``: a session that gains a team or the admin flag is put
on record when it is saved, one that loses them (``session.clear()`` at logout) is revoked.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from flask import Flask, Request, Response
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer

from ..config import Web
from ..store import GameStore

KEY_FIELD = "session_key"  # the generated signing key, among the store's web values
KEY_REFRESH = 1.0  # seconds a node signs with the key it read last
ID = "sid"  # the session's id in the cookie


def identity(session: dict[str, Any]) -> str | None:
    """Whom a session is for ("admin", "team:3", both), or None when nobody logged in."""
    parts = (["admin"] if session.get("admin") else []) + ([f"team:{session['team']}"]
                                                           if session.get("team") is not None else [])
    return " ".join(parts) or None


class SessionKey:
    """The cookie signing key: the game file's, or the one generated for the game in Redis."""

    def __init__(self, store: GameStore, configured: str | None) -> None:
        self.store = store
        self.configured = configured
        self._read: tuple[float, str] | None = None

    def current(self) -> str:
        """The key to sign and check with (re-read from Redis at most every `KEY_REFRESH` s)."""
        if self.configured:
            return self.configured
        if self._read is None or time.monotonic() - self._read[0] >= KEY_REFRESH:
            key = self.store.web_value(KEY_FIELD)
            if not key:
                self.store.set_web_value_once(KEY_FIELD, secrets.token_urlsafe(32))
                key = self.store.web_value(KEY_FIELD) or ""
            self._read = (time.monotonic(), key)
        return self._read[1]

    def rotate(self) -> bool:
        """A new generated key (False, and nothing changed, when the game file sets one)."""
        if self.configured:
            return False
        self.store.set_web_value(KEY_FIELD, secrets.token_urlsafe(32))
        self._read = None
        return True


class SessionRecords:
    """The logged-in sessions on record: id -> identity, each expiring after its lifetime
    without use (under `Keys.web_session`)."""

    def __init__(self, store: GameStore, lifetime: float) -> None:
        self.redis = store.redis
        self.key = store.keys.web_session
        self.lifetime = max(1, round(lifetime))

    def create(self, who: str) -> str:
        """Put a new session for `who` on record; its id."""
        sid = secrets.token_urlsafe(18)
        self.redis.set(self.key(sid), who, ex=self.lifetime)
        return sid

    def check(self, sid: str, who: str) -> bool:
        """True when `sid` is on record for `who`; its lifetime starts again (one round trip)."""
        return self.redis.getex(self.key(sid), ex=self.lifetime) == who

    def revoke(self, sid: str) -> None:
        self.redis.delete(self.key(sid))

    def revoke_all(self) -> int:
        """Delete every record; how many there were."""
        keys = list(self.redis.scan_iter(match=self.key("*"), count=1000))
        return self.redis.unlink(*keys) if keys else 0


class RevocableSession(SecureCookieSession):
    """A cookie session that remembers the (id, identity) it was opened with."""

    opened: tuple[str, str] | None = None


class RevocableSessions(SecureCookieSessionInterface):
    """Flask's cookie sessions, signed with the `SessionKey`, logged-in ones checked
    against their `SessionRecords` on every request."""

    session_class = RevocableSession

    def __init__(self, store: GameStore, web: Web) -> None:
        self.key = SessionKey(store, web.session_key)
        self.records = SessionRecords(store, web.session_lifetime)
        self._serializer: tuple[str, URLSafeTimedSerializer] | None = None

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer:
        key = self.key.current()
        if self._serializer is None or self._serializer[0] != key:
            self._serializer = (key, URLSafeTimedSerializer(
                key, salt=self.salt, serializer=self.serializer,
                signer_kwargs={"key_derivation": self.key_derivation, "digest_method": self.digest_method}))
        return self._serializer[1]

    def open_session(self, app: Flask, request: Request) -> RevocableSession | None:
        session = super().open_session(app, request)
        if session is None:
            return None
        sid, who = session.get(ID), identity(session)
        if sid is None and who is None:
            return session  # nobody logged in (a CSRF token, a language)
        if sid is not None and who is not None and self.records.check(sid, who):
            session.opened = (sid, who)
            return session
        revoked = self.session_class()  # logged out, revoked, expired: the cookie goes
        revoked.modified = True
        return revoked

    def save_session(self, app: Flask, session: RevocableSession, response: Response) -> None:  # type: ignore[override]
        who, sid = identity(session), session.get(ID)
        if who is None:
            if sid is not None:
                del session[ID]
            if session.opened:
                self.records.revoke(session.opened[0])
        elif sid is None or session.opened != (sid, who):  # logged in (or became someone else)
            if session.opened:
                self.records.revoke(session.opened[0])
            session[ID] = self.records.create(who)
        super().save_session(app, session, response)

    def revoke_all(self) -> int:
        """Log everyone out, on every node; how many sessions were on record."""
        return self.records.revoke_all()

    def rotate_key(self) -> bool:
        """A new signing key (unless the game file sets one) and every session revoked;
        True when the key changed."""
        rotated = self.key.rotate()
        self.revoke_all()
        return rotated
