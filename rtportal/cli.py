"""Command line: ``rtportal serve | migrate | seed-demo | create-firm | audit verify | firm-keys``.

``serve`` migrates once in the parent (workers then find the schema at
head), optionally seeds the demo firm, and runs uvicorn with the app
factory: uvloop/httptools when installed, no per-message deflate (it costs
CPU per frame and E2EE ciphertext does not compress), ``ws_max_size`` from
settings.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import logging
import os
import socket
import sys
from collections.abc import Mapping, MutableMapping, Sequence

from rtportal import logs
from rtportal.access import audit, passwords
from rtportal.db import Database
from rtportal.db.migrate import current_revision, upgrade
from rtportal.db.models import Firm
from rtportal.demo import format_demo, seed_demo
from rtportal.demoportal import frk_path
from rtportal.errors import RtPortalError
from rtportal.firstrun import FirstRun, create_firm_with_admin, signin_url
from rtportal.http.uvicorn_http import UVICORN_HTTP
from rtportal.sdk import admincli
from rtportal.settings import Settings
from rtportal.ws.native import UVICORN_WS

__all__ = ["build_parser", "every_interface_hint", "machine_address", "main"]

APP_FACTORY = "rtportal.app:create_app_from_env"

log = logging.getLogger("rtportal.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rtportal", description="rtportal server and tools")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the web server (HTTP API + websockets)")
    serve.add_argument("--demo", action="store_true", help="seed the demo firm, print logins")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="worker processes (needs Redis)")
    serve.add_argument("--log-level", default="info")
    sub.add_parser("migrate", help="apply database migrations and exit")
    sub.add_parser("seed-demo", help="create the demo firm (idempotent), print logins")
    create = sub.add_parser("create-firm", help="create a firm and its first org admin")
    create.add_argument("--name", required=True, help="the firm's name")
    create.add_argument(
        "--slug", help="the firm's short name in sign-in links (default: from --name)"
    )
    create.add_argument("--admin-email", required=True)
    create.add_argument("--admin-name", required=True)
    create.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the admin's password from the first line of standard input (else a prompt)",
    )
    audit_cmd = sub.add_parser("audit", help="audit log tools")
    audit_sub = audit_cmd.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser("verify", help="check the hash chain of every firm's audit log")
    verify.add_argument("--firm", metavar="SLUG", help="only this firm")
    admincli.add_parser(sub)
    return parser


async def _audit_verify(settings: Settings, slug: str | None) -> int:
    """Print each firm's verified count (exit 0), or the first broken entry (exit 1)."""
    db = Database(settings.database_url)
    try:
        results = await audit.verify_firms(db, slug)
    except audit.ChainBroken as broken:
        async with db.read() as session:
            firm = await session.get(Firm, broken.firm_id)
        name = firm.slug if firm else broken.firm_id
        print(f"audit chain BROKEN: firm {name}: entry {broken.firm_seq}: {broken.why}")
        return 1
    finally:
        await db.close()
    for firm_slug, count in results:
        print(f"firm {firm_slug}: {count} entries, chain ok")
    total = sum(count for _, count in results)
    print(f"{len(results)} firms, {total} entries verified")
    return 0


def _read_password(from_stdin: bool) -> str:
    """The admin's password: one line of stdin, or typed twice at a prompt."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    import getpass

    first = getpass.getpass("Password for the org admin: ")
    if getpass.getpass("Repeat the password: ") != first:
        raise SystemExit("error: the passwords differ")
    return first


def _create_firm(args: argparse.Namespace, settings: Settings) -> int:
    password = _read_password(args.password_stdin)

    async def run() -> FirstRun:
        passwords.configure(settings)  # the server's hash parameters, as the app uses
        await upgrade(settings.database_url)
        db = Database(settings.database_url)
        try:
            return await create_firm_with_admin(
                db,
                settings,
                name=args.name,
                slug=args.slug,
                admin_email=args.admin_email,
                admin_name=args.admin_name,
                password=password,
            )
        finally:
            await db.close()

    made = asyncio.run(run())
    print(f"created firm {args.name!r} (slug {made.slug}) with org admin {args.admin_email}")
    print(f"sign in: {signin_url(settings, made.slug)}")
    return 0


async def _seed(settings: Settings) -> str:
    passwords.configure(settings)  # the demo staff's password hashes
    await upgrade(settings.database_url)
    db = Database(settings.database_url)
    try:
        users = await seed_demo(db, settings)
    finally:
        await db.close()
    return format_demo(users, settings.public_url, frk_path(settings))


def _listen_defaults(host: str, port: int, environ: MutableMapping[str, str]) -> None:
    """Where the server listens decides its default public URL and allowed origins.

    ``rtportal serve --port 8765`` prints login links to port 8765 and
    allows the Origin of that port. Only variables the operator did not set
    are filled in, in ``environ`` (``os.environ``: uvicorn's worker
    processes build their settings from it).
    """
    # A comparison, not a bind: "every interface" is reached here as 127.0.0.1.
    local = host in ("", "0.0.0.0", "::", "127.0.0.1", "localhost")  # noqa: S104
    shown = "127.0.0.1" if local else host
    origins = [f"http://127.0.0.1:{port}", f"http://localhost:{port}"]
    if not local:
        origins.append(f"http://{host}:{port}")
    for name, value in (
        ("RTPORTAL_PUBLIC_URL", f"http://{shown}:{port}"),
        ("RTPORTAL_ALLOWED_ORIGINS", ",".join(origins)),
    ):
        if not environ.get(name):  # unset or empty: Settings would use port 8000
            environ[name] = value


def machine_address() -> str | None:
    """This machine's address on its default route (what other machines reach), if any."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            # A UDP "connect" only picks the route and source address: nothing is sent.
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1 (RFC 5737)
            address = str(probe.getsockname()[0])
        except OSError:
            return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address  # noqa: S104


def every_interface_hint(host: str, port: int, environ: Mapping[str, str]) -> str | None:
    """What to set when ``--host`` is every interface but the defaults accept only localhost.

    Pages opened by this machine's address would have their websocket
    refused (4003, the Origin is not allowed) and their login links would
    name 127.0.0.1: say so at start, with the values to set.
    """
    if host not in ("", "0.0.0.0", "::"):  # noqa: S104 - a comparison, not a bind
        return None
    if environ.get("RTPORTAL_ALLOWED_ORIGINS") and environ.get("RTPORTAL_PUBLIC_URL"):
        return None
    address = machine_address() or "<this machine's address>"
    url = f"http://{address}:{port}"
    return (
        f"listening on every interface, but only pages opened as http://127.0.0.1:{port} or "
        f"http://localhost:{port} may connect (RTPORTAL_ALLOWED_ORIGINS) and links name "
        f"127.0.0.1 (RTPORTAL_PUBLIC_URL). To open the portal as {url} from other machines, "
        f"set RTPORTAL_PUBLIC_URL={url} RTPORTAL_ALLOWED_ORIGINS={url},"
        f"http://127.0.0.1:{port} (behind a TLS proxy, its https:// address instead)"
    )


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    logs.setup(settings.log_format)
    hint = every_interface_hint(args.host, args.port, os.environ)
    if hint is not None:
        logs.event(log, "origins_hint", logging.WARNING, message=hint)
    if not (os.environ.get("RTPORTAL_PUBLIC_URL") and os.environ.get("RTPORTAL_ALLOWED_ORIGINS")):
        _listen_defaults(args.host, args.port, os.environ)
        settings = Settings.from_env()
    if args.workers < 1:
        raise SystemExit("--workers must be at least 1")
    if args.workers > 1 and settings.broker_url.startswith("memory://"):
        # An in-process broker cannot reach the other workers' websockets.
        raise SystemExit(
            "--workers > 1 needs a shared broker: set RTPORTAL_BROKER_URL=redis://host:6379/0"
        )
    asyncio.run(upgrade(settings.database_url))
    if args.demo:
        print(asyncio.run(_seed(settings)), flush=True)
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        # httptools with rtportal's header timeout (rtportal/http/uvicorn_http.py).
        http=UVICORN_HTTP if importlib.util.find_spec("httptools") else "h11",
        # rtportal's own transport: no task per idle connection (rtportal/ws/native.py).
        ws=UVICORN_WS,
        ws_per_message_deflate=False,
        ws_max_size=settings.ws_max_frame_bytes,
        log_level=args.log_level,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        if args.command == "serve":
            return _serve(args, settings)
        if args.command == "migrate":
            asyncio.run(upgrade(settings.database_url))
            print(f"database at revision {asyncio.run(current_revision(settings.database_url))}")
            return 0
        if args.command == "seed-demo":
            print(asyncio.run(_seed(settings)))
            return 0
        if args.command == "audit":
            return asyncio.run(_audit_verify(settings, args.firm))
        if args.command == "create-firm":
            return _create_firm(args, settings)
        if args.command == "firm-keys":
            return admincli.run(args)
    except RtPortalError as exc:
        print(f"error [{exc.code}]: {exc.message}", file=sys.stderr)
        return 1
    return 2  # pragma: no cover - argparse rejects unknown commands
