"""Seed rtportal for a benchmark run (run as a subprocess by the runner).

    RTPORTAL_SECRET_KEY=... python -m bench.rtportal_seed DATABASE_URL SPEC_JSON
        -> prints tokens JSON

Goes through rtportal's own code: ``rtportal.db.migrate.upgrade`` for the schema,
the demo module's creation helpers for the firm, matters, contacts and
memberships, and ``rtportal.access.sessions.issue_token`` for bearer tokens
(keyed with the server's ``RTPORTAL_SECRET_KEY``, which the server must share). Every
member is a contact (what a client's phone is), so the benchmark also pays
for the audience filter that contacts get.

SPEC_JSON: ``{"layouts": {"rooms": [["R...000", 10], ...], ...}}`` (matter
reference and member count per layout). Output: ``{"rooms": [[token, ...]
per matter], ...}``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from rtportal.access.sessions import issue_token
from rtportal.db import Database, migrate
from rtportal.demo import add_member, create_contact, create_firm, create_matter
from rtportal.settings import load_secret_key

__all__ = ["seed"]


async def seed(url: str, spec: dict[str, Any], key: bytes) -> dict[str, list[list[str]]]:
    await migrate.upgrade(url)
    db = Database(url)
    out: dict[str, list[list[str]]] = {}
    try:
        async with db.write() as session:
            firm = await create_firm(session, "Benchmark & Co")
            for name, matters in spec["layouts"].items():
                per_matter: list[list[str]] = []
                for ref, members in matters:
                    matter = await create_matter(session, firm, title=f"bench {ref}", reference=ref)
                    tokens = []
                    for k in range(members):
                        who = await create_contact(session, firm, display_name=f"Client {ref}-{k}")
                        await add_member(session, matter, who)
                        tokens.append(
                            await issue_token(
                                session, key, "contact", who.id, label="bench", ttl=None
                            )
                        )
                    per_matter.append(tokens)
                out[name] = per_matter
    finally:
        await db.close()
    return out


if __name__ == "__main__":
    secret = load_secret_key(Path("."), os.environ["RTPORTAL_SECRET_KEY"])
    print(json.dumps(asyncio.run(seed(sys.argv[1], json.loads(sys.argv[2]), secret))))
