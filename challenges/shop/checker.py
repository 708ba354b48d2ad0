"""Checker for `shop`: accounts, selling, searching and ordering.

Flag store 1: the comment of an order (public flag id: the order id).
Flag store 2: the shipping address of an account (public flag id: the user name).
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

# Run as a script, this folder heads sys.path and checker.py would shadow the `checker` package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from checker.lib import (  # noqa: E402
    Checker,
    Corrupt,
    HttpSession,
    Status,
    main,
    rand_password,
    rand_string,
    rand_text,
    rand_user,
)

PORT = 8003
GOODS = ("lamp", "mug", "scarf", "kettle", "notebook", "backpack", "candle", "teapot", "puzzle", "radio")
STREETS = ("Main St", "Harbour Rd", "Elm Ave", "Station Sq", "Mill Lane", "Park Row")


def _address() -> str:
    return f"{random.randint(1, 250)} {random.choice(STREETS)}, {rand_string(5, '0123456789')}"


class ShopChecker(Checker):
    """Shops like a customer and a seller would, with random goods and order of steps."""

    vulns = [1, 1]
    timeout = 10

    def _ok(self, http: HttpSession, method: str, path: str, what: str, **kwargs: Any) -> Any:
        resp = http.request(method, path, **kwargs)
        self.assert_eq(resp.status_code, 200, f"{what} failed", f"{method} {path}: {resp.text[:200]}")
        return http.json_of(resp)

    def _customer(self, address: str) -> tuple[HttpSession, dict]:
        http = self.http(PORT)
        account = {"username": rand_user(), "password": rand_password()}
        self._ok(http, "POST", "/register", "register", data={**account, "address": address})
        self._login(http, account)
        return http, account

    def _login(self, http: HttpSession, account: dict, lost: bool = False) -> None:
        resp = http.post("/login", data={"username": account["username"], "password": account["password"]})
        if lost and resp.status_code == 403:
            raise Corrupt("user of the flag is gone", f"login {account['username']} refused")
        self.assert_eq(resp.status_code, 200, "login failed", resp.text[:200])
        self.assert_eq(http.json_of(resp).get("user"), account["username"], "login as wrong user")

    def _some_product(self, http: HttpSession) -> int:
        products = self._ok(http, "GET", "/products", "catalogue", params={"q": ""})
        self.assert_true(isinstance(products, list) and products, "catalogue empty")
        return random.choice(products)["id"]

    # -- actions ---------------------------------------------------------------------
    def check(self) -> None:
        """Sell a product, find it, order it, keep orders private; steps partly shuffled."""
        address = _address()
        seller, account = self._customer(address)
        buyer, _ = self._customer(_address())
        good = f"{random.choice(GOODS)} {rand_string(8)}"
        product = {"name": good, "price": random.randint(1, 500), "description": rand_text()}
        product["id"] = self._ok(seller, "POST", "/products", "sell", data=product)["id"]
        comment = rand_text()

        def search() -> None:
            word = good.split()[1][random.randint(0, 3):][:4]
            hits = self._ok(buyer, "GET", "/products", "search", params={"q": word})
            self.assert_in(product, hits, "search misses a product")
            none = self._ok(buyer, "GET", "/products", "search", params={"q": rand_string(16)})
            self.assert_eq(none, [], "search finds what does not exist")

        def account_page() -> None:
            me = self._ok(seller, "GET", "/account", "account")
            self.assert_eq(me, {"username": account["username"], "address": address}, "account wrong")
            bad = seller.post("/login", data={"username": account["username"], "password": rand_password()})
            self.assert_eq(bad.status_code, 403, "wrong password accepted")

        def order() -> None:
            data = {"product_id": product["id"], "quantity": random.randint(1, 5), "comment": comment}
            order_id = self._ok(buyer, "POST", "/orders", "order", data=data)["id"]
            mine = self._ok(buyer, "GET", f"/orders/{order_id}", "order view")
            self.assert_eq(mine, {"id": order_id, **data}, "order wrong")
            self.assert_in(mine, self._ok(buyer, "GET", "/orders", "order list"), "order not listed")
            self.assert_eq(seller.get(f"/orders/{order_id}").status_code, 404, "other's order visible")

        steps = [search, account_page, order]
        random.shuffle(steps)
        for step in steps:
            step()

    def put(self, flag_id: str, flag: str, vuln: int) -> dict:
        """Put the flag in an order comment (1) or in the account's address (2)."""
        if vuln == 2:
            _, account = self._customer(flag)
            return {"public_flag_id": account["username"], **account}
        http, account = self._customer(_address())
        data = {"product_id": self._some_product(http), "quantity": random.randint(1, 3), "comment": flag}
        order_id = self._ok(http, "POST", "/orders", "order", data=data)["id"]
        return {"public_flag_id": str(order_id), "order": order_id, **account}

    def get(self, flag_id: str, flag: str, vuln: int) -> None:
        """Log in as the owner and read the order comment or the address."""
        data = json.loads(flag_id)
        http = self.http(PORT)
        self._login(http, data, lost=True)
        if vuln == 1:
            resp = http.get(f"/orders/{data['order']}")
            self.assert_eq(resp.status_code, 200, "order with the flag is gone", status=Status.CORRUPT)
            got = http.json_of(resp).get("comment")
        else:
            got = self._ok(http, "GET", "/account", "account").get("address")
        self.assert_eq(got, flag, "flag is gone", status=Status.CORRUPT)


if __name__ == "__main__":
    main(ShopChecker)
