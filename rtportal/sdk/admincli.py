"""``rtportal firm-keys init | approve``: the org admin's root-key commands.

``init`` runs offline: a new firm root key file and its fingerprint in the
human format (8 groups of 4), to compare with what staff and clients see.
``approve`` signs in as the org admin (password, second factor) and
certifies the staff keys waiting for approval with the key file.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from pathlib import Path

from rtportal.sdk.client import Client
from rtportal.sdk.errors import ApiError
from rtportal.sdk.keyfile import init_key_file, read_key_file
from rtportal.sdk.transport import Http

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = sub.add_parser("firm-keys", help="the firm root key (FRK): make it, approve staff")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    init = keys_sub.add_parser("init", help="make a firm root key file (offline)")
    init.add_argument("--firm", required=True, metavar="SLUG")
    init.add_argument("--out", required=True, type=Path, metavar="FILE")
    approve = keys_sub.add_parser("approve", help="certify the staff keys waiting for approval")
    approve.add_argument("--url", required=True, help="the portal, e.g. https://portal.example")
    approve.add_argument("--firm", required=True, metavar="SLUG")
    approve.add_argument("--email", required=True, help="the org admin's sign-in email")
    approve.add_argument("--key", required=True, type=Path, metavar="FILE")
    approve.add_argument("--totp", help="the authenticator code")
    approve.add_argument("--user", action="append", help="only this rtp1 id (e.g. s3); repeat")
    approve.add_argument("--state-dir", type=Path, default=Path.home() / ".rtportal")
    approve.add_argument("--password-stdin", action="store_true")


def run(args: argparse.Namespace) -> int:
    if args.keys_command == "init":
        frk = init_key_file(args.out, args.firm)
        print(f"firm root key for {args.firm} written to {args.out} (keep it offline)")
        print(f"fingerprint: {frk.public.fingerprint_text}")
        return 0
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass()
    try:
        approved = asyncio.run(_approve(args, password))
    except ApiError as exc:
        print(f"error [{exc.server_code}]: {exc.message}", file=sys.stderr)
        return 1
    print("approved: " + (", ".join(approved) if approved else "nobody was waiting"))
    return 0


async def _approve(args: argparse.Namespace, password: str) -> list[str]:
    _, frk = read_key_file(args.key, firm=args.firm)
    args.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    http = Http(args.url)
    try:
        client = Client(http, firm=args.firm, state_dir=args.state_dir)
        await client.sign_in(args.email, password, totp=args.totp)
        return await client.approve_pending(frk, only=args.user)
    finally:
        await http.aclose()
