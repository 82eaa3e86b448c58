"""docs/keys.md's and docs/api.md's key-directory tables are the endpoints the
server has: the same routes, the same body fields, the same answer fields."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from starlette.routing import Route

from rtportal import errors
from rtportal.http import keys as http_keys
from tests.conftest import MakeFirm
from tests.support.keyfirm import key_firm
from tests.test_docs_agree import DOCS, table_rows

KEYS_HEADING = "## HTTP API (`/api/v1/keys/…`)"
API_HEADING = "## Keys: the key directory (`/api/v1/keys/…`)"
_ROUTE = re.compile(r"`(GET|PUT|POST) (/api/v1/keys/[^`?]+)(?:\?[^`]*)?`")


def _braces(text: str) -> str:
    """The first ``{…}`` of ``text``, nested braces included."""
    start = text.index("{")
    depth = 0
    for at in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[at], 0)
        if depth == 0:
            return text[start : at + 1]
    raise AssertionError(f"unbalanced braces: {text}")


def _top_fields(braces: str) -> set[str]:
    """The top-level field names of a documented ``{a, b?: …, c: {…}}`` (``?``: optional)."""
    fields: set[str] = set()
    depth, word = 0, ""
    for char in braces:
        if depth == 1 and (char.isalnum() or char == "_"):
            word += char
            continue
        if word and depth == 1 and char in ",:?}":
            fields.add(word)
        word = ""
        depth += {"{": 1, "[": 1, "}": -1, "]": -1}.get(char, 0)
    return fields


def _rows(doc: str, heading: str) -> dict[tuple[str, str], list[str]]:
    rows: dict[tuple[str, str], list[str]] = {}
    for row in table_rows((DOCS / doc).read_text(), heading):
        match = _ROUTE.fullmatch(row[0])
        assert match, row[0]
        rows[(match.group(1), match.group(2))] = row
    return rows


def _keys_md() -> dict[tuple[str, str], list[str]]:
    return _rows("keys.md", KEYS_HEADING)


def _api_md() -> dict[tuple[str, str], list[str]]:
    return _rows("api.md", API_HEADING)


def _documented(route: tuple[str, str]) -> tuple[set[str], set[str]]:
    """(keys.md's fields, api.md's fields) of a route: a GET's answer, a write's body."""
    keys_what, api_body = _keys_md()[route][2], _api_md()[route][2]
    if route[0] == "GET":
        api_body = api_body.split("→", 1)[1]
    return _top_fields(_braces(keys_what)), _top_fields(_braces(api_body))


def test_both_tables_list_exactly_the_routes_the_server_has() -> None:
    served = {
        (method, route.path)
        for route in http_keys.routes()
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD"
    }
    assert set(_keys_md()) == served
    assert set(_api_md()) == served


def test_keys_md_names_every_error_code_api_md_gives_for_the_key_directory() -> None:
    known = set(re.findall(r'code = "([a-z_]+)"', Path(errors.__file__).read_text()))

    def codes(text: str) -> set[str]:
        return {c for c in re.findall(r"`(?:[0-9]{3} )?([a-z_]+)`", text) if c in known}

    api = (DOCS / "api.md").read_text().split(API_HEADING, 1)[1].split("\n## ", 1)[0]
    keys = (DOCS / "keys.md").read_text().split(KEYS_HEADING, 1)[1].split("| method and path", 1)[0]
    assert codes(api) <= codes(keys), codes(api) - codes(keys)


def test_both_tables_name_the_same_fields_for_every_route() -> None:
    for route in _api_md():
        in_keys_md, in_api_md = _documented(route)
        assert in_keys_md == in_api_md, route


async def test_each_write_accepts_every_documented_body_field_and_no_other(
    make_firm: MakeFirm, http: httpx.AsyncClient
) -> None:
    kf = await key_firm(await make_firm(), http)
    writes = [route for route in _api_md() if route[0] != "GET"]
    assert len(writes) == 9
    for method, path in writes:
        documented = _documented((method, path))[1]
        body = {field: None for field in documented} | {"zz_undocumented": 1}
        local = path.removeprefix("/api/v1/keys").replace("{ref}", kf.ref)
        answer = await kf.call(method, local, "admin", body, status=400)
        # The one unknown field is the extra one: every documented field is known.
        assert answer.json()["error"]["message"] == "unknown fields: zz_undocumented", path
        # And every field the server knows is documented: a body of one more
        # name than documented is refused for exactly that name.
        for extra in ("wraps", "certs", "handover", "backup", "head", "record", "list"):
            if extra in documented:
                continue
            answer = await kf.call(method, local, "admin", {extra: None}, status=400)
            assert answer.json()["error"]["message"] == f"unknown fields: {extra}", (path, extra)


async def test_each_read_answers_exactly_the_documented_fields(
    make_firm: MakeFirm, http: httpx.AsyncClient
) -> None:
    kf = await key_firm(await make_firm(), http)
    for path, who in (
        ("/firm", "staff"),
        ("/pending", "admin"),
        (f"/matters/{kf.ref}", "staff"),
        ("/me", "staff"),
    ):
        answer = (await kf.call("GET", path, who, status=200)).json()
        route = ("GET", "/api/v1/keys" + path.replace(kf.ref, "{ref}"))
        assert set(answer) == _documented(route)[1], route
