"""The layout rules of static/ and of the installed package, read from the files.

* Every text the portal page shows comes from ``static/shared/strings.js`` and
  the screen modules it is split into (``strings_*.js`` beside it), each
  table or text defined in one of them only: no other page module holds an
  English phrase, and ``index.html`` holds text only in ``<noscript>``
  (which no script can fill). A client's page loads no staff strings.
* A client's page never loads the staff tools: nothing in ``shared/`` or
  ``client/`` imports ``staff/`` statically (``client/main.js`` imports it
  with ``import()`` after a staff member signed in).
* The crypto test tooling is not part of the installed package.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STATIC = REPO / "static"
PAGE_DIRS = ("shared", "client", "staff")
STRINGS = STATIC / "shared" / "strings.js"
STRINGS_MODULES = sorted((STATIC / "shared").glob("strings*.js"))

# A quoted or template literal holding a capitalised word followed by another
# word ("Sign out", `Could not sign out (${...})`): user-visible text. Code
# strings (ids, classes, frame types, close reasons) are lower case.
PHRASE = re.compile(r"""(['"`])[^'"`\n]*\b[A-Z][a-z]+\s+[a-z][^'"`\n]*\1""")
COMMENT = re.compile(r"^\s*(//|\*|/\*)")


def page_modules() -> list[Path]:
    found = sorted(p for d in PAGE_DIRS for p in (STATIC / d).glob("*.js"))
    assert found, "no page modules under static/shared|client|staff"
    return found


def page_code_lines() -> Iterator[tuple[str, str]]:
    """("static/x.js:12", line) of every code line (not a comment) of the page
    modules other than the strings modules."""
    for path in page_modules():
        if path in STRINGS_MODULES:
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if not COMMENT.match(line):
                yield f"{path.relative_to(REPO)}:{n}", line


def test_user_visible_text_lives_only_in_strings_js() -> None:
    offenders: list[str] = []
    for where, line in page_code_lines():
        code = line.split(" // ", 1)[0]
        if "console." in code:  # developer diagnostics, not page text
            continue
        offenders.extend(f"{where}: {match.group(0)}" for match in PHRASE.finditer(code))
    assert offenders == []
    assert "export const TEXT" in STRINGS.read_text()


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ("meta", "link", "br", "img", "input"):
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.stack:
            del self.stack[len(self.stack) - 1 - self.stack[::-1].index(tag) :]

    def handle_data(self, data: str) -> None:
        if data.strip() and "noscript" not in self.stack:
            self.text.append(data.strip())


def test_index_html_holds_no_text_but_noscript() -> None:
    parser = _Text()
    parser.feed((STATIC / "index.html").read_text())
    assert parser.text == []


def test_client_and_shared_modules_do_not_import_staff_statically() -> None:
    static_import = re.compile(r"^\s*import\b[^;]*from\s+['\"]([^'\"]+)['\"]", re.M)
    for path in page_modules():
        if path.parent.name == "staff":
            continue
        for target in static_import.findall(path.read_text()):
            assert "staff/" not in target, f"{path.relative_to(REPO)} imports {target}"
    assert "import('../staff/" in (STATIC / "client" / "main.js").read_text()


def test_crypto_test_tooling_is_not_in_the_package() -> None:
    crypto = REPO / "rtportal" / "crypto"
    for name in ("vectors.py", "vectors_verify.py", "world.py"):
        assert not (crypto / name).exists()
        assert (REPO / "tests" / "support" / "crypto" / name).exists()
    imports_tests = re.compile(r"^\s*(from|import)\s+tests\b", re.M)
    for path in (REPO / "rtportal").rglob("*.py"):
        assert not imports_tests.search(path.read_text()), path


def _string_tables() -> dict[str, set[str]]:
    """The keys of each ``export const NAME = {...}`` table of the strings modules."""
    text = "\n".join(path.read_text() for path in STRINGS_MODULES)
    tables: dict[str, set[str]] = {}
    for match in re.finditer(r"^export const ([A-Z_]+) = \{\n(.*?)^\};", text, re.M | re.S):
        body = match.group(2)
        # A nested table's keys are not the table's own: drop its braces' contents.
        while (flat := re.sub(r"\{[^{}]*\}", "{}", body)) != body:
            body = flat
        # Keys open a line ("  key:") or follow a comma on it ("..., key:").
        keys = re.findall(r"(?:^  |, )(?:'([^']+)'|([A-Za-z_][A-Za-z0-9_]*)):", body, re.M)
        tables[match.group(1)] = {quoted or bare for quoted, bare in keys}
    return tables


def test_every_string_a_page_uses_exists_in_strings_js() -> None:
    """``STAFF.sendd`` would show "undefined": every ``TABLE.key`` a module reads is defined."""
    tables = _string_tables()
    assert {"TEXT", "AUTH", "STAFF", "ERRORS", "NOTICE"} <= set(tables)
    missing = []
    for where, line in page_code_lines():
        for table, key in re.findall(r"\b([A-Z][A-Z_]+)\.([A-Za-z_][A-Za-z0-9_]*)\b", line):
            if table in tables and key not in tables[table]:
                missing.append(f"{where}: {table}.{key}")
    assert missing == []


def test_strings_modules_define_each_name_once_and_stay_small() -> None:
    """One place per string: no exported name in two strings modules; each module
    under the 600-line limit; a client or shared module never imports the staff
    app's strings (a client's page would load them)."""
    assert [p.name for p in STRINGS_MODULES] == [
        "strings.js",
        "strings_docs.js",
        "strings_staff.js",
        "strings_threads.js",
    ]
    seen: dict[str, str] = {}
    for path in STRINGS_MODULES:
        text = path.read_text()
        assert len(text.splitlines()) <= 600, path.name
        for name in re.findall(r"^export const ([A-Za-z_][A-Za-z0-9_]*)", text, re.M):
            assert name not in seen, f"{name} in {seen.get(name)} and {path.name}"
            seen[name] = path.name
    for path in page_modules():
        if path.parent.name != "staff" and path not in STRINGS_MODULES:
            assert "strings_staff.js" not in path.read_text(), path.relative_to(REPO)


def test_page_modules_put_no_literal_text_in_elements() -> None:
    """``el(tag, class, 'Some text')`` and ``.textContent = 'Text'`` take text from strings.js."""
    literal_el = re.compile(r"\bel\([^()]*,[^()]*,\s*(['\"`])[^'\"`]*[A-Za-z]{2}")
    literal_text = re.compile(
        r"\.(textContent|placeholder|title)\s*=\s*(['\"`])[^'\"`]*[A-Za-z]{2}"
    )
    offenders = []
    for where, line in page_code_lines():
        code = re.sub(r"\$\{[^}]*\}", "", line)  # interpolated code is not text
        if literal_el.search(code) or literal_text.search(code):
            offenders.append(f"{where}: {line.strip()}")
    assert offenders == []
