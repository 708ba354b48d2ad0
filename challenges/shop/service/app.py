"""shop: a tiny web shop on two sqlite databases (adrange sample challenge).

Form-encoded requests, JSON answers, a ``sid`` cookie after login.

    GET  /                                         -> HTML catalogue
    POST /register  username, password, address    -> {"ok": true}
    POST /login     username, password             -> {"ok": true, "user"} + cookie sid
    GET  /account                                  -> {"username", "address"}
    POST /account   address                        -> {"ok": true}
    GET  /products?q=TEXT                          -> [{"id", "name", "price", "description"}]
    POST /products  name, price, description       -> {"id"}      (every user may sell)
    POST /orders    product_id, quantity, comment  -> {"id"}
    GET  /orders                                   -> own orders
    GET  /orders/ID                                -> one own order

Accounts live in ``accounts.db``, the catalogue and orders in ``catalog.db``.
Run: ``python3 app.py --host 0.0.0.0 --port 8003 --data /srv/shop/data``.
"""

from __future__ import annotations

import argparse
import hashlib
import html
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
from urllib.parse import parse_qs, urlsplit

ACCOUNTS = """
CREATE TABLE IF NOT EXISTS users (name TEXT PRIMARY KEY, pwhash TEXT NOT NULL, address TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (sid TEXT PRIMARY KEY, name TEXT NOT NULL);
"""
CATALOG = """
CREATE TABLE IF NOT EXISTS products (
    id INTEGER PRIMARY KEY AUTOINCREMENT, seller TEXT NOT NULL, name TEXT NOT NULL,
    price INTEGER NOT NULL, description TEXT NOT NULL, listed INTEGER NOT NULL DEFAULT 1);
CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY AUTOINCREMENT, owner TEXT NOT NULL, product_id INTEGER NOT NULL,
    quantity INTEGER NOT NULL, comment TEXT NOT NULL);
"""
STARTER_PRODUCTS = [
    ("Rubber duck", 3, "Debugs your code by listening."),
    ("Mechanical keyboard", 89, "Loud, clicky, beloved."),
    ("USB cable", 5, "One metre, both ends fit."),
    ("Coffee beans", 12, "Dark roast for long nights."),
    ("Sticker pack", 4, "Laptop decorations, assorted."),
]
NAME_RE = re.compile(r"[A-Za-z0-9_.-]{3,40}")
MAX_BODY = 16 * 1024


class ShopError(Exception):
    """An error answered as ``{"error": message}`` with an HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@contextmanager
def _connect(path: Path) -> Iterator[sqlite3.Connection]:
    db = sqlite3.connect(path, timeout=10)
    db.row_factory = sqlite3.Row
    try:
        with db:
            yield db
    finally:
        db.close()


def _pwhash(name: str, password: str) -> str:
    return hashlib.sha256(f"{name}:{password}".encode()).hexdigest()


class Shop:
    """Every query the shop makes, over its two databases."""

    def __init__(self, data: Path) -> None:
        self.accounts, self.catalog = data / "accounts.db", data / "catalog.db"
        with _connect(self.accounts) as db:
            db.executescript(ACCOUNTS)
        with _connect(self.catalog) as db:
            db.executescript(CATALOG)
            if db.execute("SELECT COUNT(*) FROM products").fetchone()[0] == 0:
                db.executemany(
                    "INSERT INTO products (seller, name, price, description) VALUES ('shop', ?, ?, ?)",
                    STARTER_PRODUCTS)

    # -- accounts ------------------------------------------------------------------
    def register(self, name: str, password: str, address: str) -> bool:
        try:
            with _connect(self.accounts) as db:
                db.execute("INSERT INTO users VALUES (?, ?, ?)", (name, _pwhash(name, password), address))
        except sqlite3.IntegrityError:
            return False
        return True

    def login(self, name: str, password: str) -> str | None:
        """The user name on a password match (the stored form is sha256 of name:password)."""
        query = (f"SELECT name FROM users WHERE name = '{name}' "
                 f"AND pwhash = '{_pwhash(name, password)}'")
        with _connect(self.accounts) as db:
            row = db.execute(query).fetchone()
        return row["name"] if row else None

    def new_session(self, name: str) -> str:
        sid = secrets.token_urlsafe(24)
        with _connect(self.accounts) as db:
            db.execute("INSERT INTO sessions VALUES (?, ?)", (sid, name))
        return sid

    def session_user(self, sid: str) -> str | None:
        with _connect(self.accounts) as db:
            row = db.execute("SELECT name FROM sessions WHERE sid = ?", (sid,)).fetchone()
        return row["name"] if row else None

    def address(self, name: str) -> str:
        with _connect(self.accounts) as db:
            row = db.execute("SELECT address FROM users WHERE name = ?", (name,)).fetchone()
        return row["address"] if row else ""

    def set_address(self, name: str, address: str) -> None:
        with _connect(self.accounts) as db:
            db.execute("UPDATE users SET address = ? WHERE name = ?", (address, name))

    # -- catalogue and orders ------------------------------------------------------
    def search(self, text: str) -> list[dict[str, Any]]:
        query = ("SELECT id, name, price, description FROM products WHERE listed = 1 "
                 f"AND (name LIKE '%{text}%' OR description LIKE '%{text}%') ORDER BY id")
        with _connect(self.catalog) as db:
            return [dict(row) for row in db.execute(query).fetchall()]

    def add_product(self, seller: str, name: str, price: int, description: str) -> int:
        with _connect(self.catalog) as db:
            cur = db.execute("INSERT INTO products (seller, name, price, description) VALUES (?, ?, ?, ?)",
                             (seller, name, price, description))
            return int(cur.lastrowid or 0)

    def product_exists(self, product_id: int) -> bool:
        with _connect(self.catalog) as db:
            row = db.execute("SELECT 1 FROM products WHERE id = ? AND listed = 1", (product_id,)).fetchone()
        return row is not None

    def add_order(self, owner: str, product_id: int, quantity: int, comment: str) -> int:
        with _connect(self.catalog) as db:
            cur = db.execute("INSERT INTO orders (owner, product_id, quantity, comment) VALUES (?, ?, ?, ?)",
                             (owner, product_id, quantity, comment))
            return int(cur.lastrowid or 0)

    def orders(self, owner: str, order_id: int | None = None) -> list[dict[str, Any]]:
        sql = "SELECT id, product_id, quantity, comment FROM orders WHERE owner = ?"
        args: tuple[Any, ...] = (owner,)
        if order_id is not None:
            sql, args = sql + " AND id = ?", (owner, order_id)
        with _connect(self.catalog) as db:
            return [dict(row) for row in db.execute(sql + " ORDER BY id", args).fetchall()]


class Handler(BaseHTTPRequestHandler):
    """HTTP front of the shop: parse the request, call `Shop`, answer JSON."""

    server_version = "shop/0.9"
    shop: Shop

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a busy game would fill the disk with access logs."""

    def do_GET(self) -> None:
        self._answer(self._get)

    def do_POST(self) -> None:
        self._answer(self._post)

    def _answer(self, route: Any) -> None:
        url = urlsplit(self.path)
        headers: list[tuple[str, str]] = []
        try:
            status, body = route(url.path, parse_qs(url.query), headers)
        except ShopError as exc:
            status, body = exc.status, {"error": str(exc)}
        except sqlite3.Error as exc:
            status, body = 500, {"error": f"database error: {exc}"}
        if isinstance(body, str):
            data, kind = body.encode(), "text/html; charset=utf-8"
        else:
            data, kind = json.dumps(body).encode(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ShopError(413, "body too large")
        fields = parse_qs(self.rfile.read(length).decode(errors="replace"), keep_blank_values=True)
        return {key: values[0] for key, values in fields.items()}

    def _user(self) -> str:
        cookie = SimpleCookie(self.headers.get("Cookie", ""))
        name = self.shop.session_user(cookie["sid"].value) if "sid" in cookie else None
        if name is None:
            raise ShopError(401, "log in first")
        return name

    def _get(self, path: str, query: dict[str, list[str]], headers: list) -> tuple[int, Any]:
        if path == "/":
            return 200, self._index()
        if path == "/account":
            name = self._user()
            return 200, {"username": name, "address": self.shop.address(name)}
        if path == "/products":
            return 200, self.shop.search(query.get("q", [""])[0])
        if path == "/orders":
            return 200, self.shop.orders(self._user())
        if re.fullmatch(r"/orders/\d+", path):
            found = self.shop.orders(self._user(), int(path.rsplit("/", 1)[1]))
            if not found:
                raise ShopError(404, "no such order")
            return 200, found[0]
        raise ShopError(404, "not found")

    def _post(self, path: str, query: dict[str, list[str]], headers: list) -> tuple[int, Any]:
        form = self._form()
        if path == "/register":
            name, password = form.get("username", ""), form.get("password", "")
            address = form.get("address", "")
            if not NAME_RE.fullmatch(name) or len(password) < 6 or len(address) > 500:
                raise ShopError(400, "username: 3-40 of [A-Za-z0-9_.-]; password: 6+; address: up to 500")
            if not self.shop.register(name, password, address):
                raise ShopError(409, "username taken")
            return 200, {"ok": True}
        if path == "/login":
            name = self.shop.login(form.get("username", ""), form.get("password", ""))
            if name is None:
                raise ShopError(403, "wrong username or password")
            headers.append(("Set-Cookie", f"sid={self.shop.new_session(name)}; Path=/; HttpOnly"))
            return 200, {"ok": True, "user": name}
        if path == "/account":
            address = form.get("address", "")
            if len(address) > 500:
                raise ShopError(400, "address too long")
            self.shop.set_address(self._user(), address)
            return 200, {"ok": True}
        if path == "/products":
            return 200, {"id": self._new_product(form)}
        if path == "/orders":
            return 200, {"id": self._new_order(form)}
        raise ShopError(404, "not found")

    def _new_product(self, form: dict[str, str]) -> int:
        seller = self._user()
        name, description = form.get("name", "").strip(), form.get("description", "")
        price = _int(form.get("price", ""), 0, 1_000_000, "price")
        if not 1 <= len(name) <= 100 or len(description) > 1000:
            raise ShopError(400, "name: 1-100 characters; description: up to 1000")
        return self.shop.add_product(seller, name, price, description)

    def _new_order(self, form: dict[str, str]) -> int:
        owner = self._user()
        product = _int(form.get("product_id", ""), 1, 2**62, "product_id")
        quantity = _int(form.get("quantity", "1"), 1, 1000, "quantity")
        comment = form.get("comment", "")
        if len(comment) > 1000:
            raise ShopError(400, "comment too long")
        if not self.shop.product_exists(product):
            raise ShopError(404, "no such product")
        return self.shop.add_order(owner, product, quantity, comment)

    def _index(self) -> str:
        rows = "".join(
            f"<tr><td>{p['id']}</td><td>{html.escape(p['name'])}</td><td>{p['price']} €</td>"
            f"<td>{html.escape(p['description'])}</td></tr>"
            for p in self.shop.search("")[-50:]
        )
        return ("<!doctype html><title>shop</title><h1>shop</h1>"
                "<form action=/products><input name=q placeholder=search><button>Search</button></form>"
                f"<table><tr><th>#</th><th>name</th><th>price</th><th>description</th></tr>{rows}</table>")


def _int(text: str, low: int, high: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ShopError(400, f"{what} must be a number") from None
    if not low <= value <= high:
        raise ShopError(400, f"{what} must be between {low} and {high}")
    return value


def main() -> None:
    """Parse arguments and serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8003)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parent / "data")
    args = parser.parse_args()
    args.data.mkdir(parents=True, exist_ok=True)
    Handler.shop = Shop(args.data)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
