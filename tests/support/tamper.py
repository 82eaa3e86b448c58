"""A malicious server for product-level tests: the real app behind a tampering layer.

``Tamper`` is a pure ASGI middleware around rtportal's app. With no rules it
passes everything through unchanged; a test installs rules that rewrite the
JSON answers of ``GET /api/v1/keys/firm``, ``GET /api/v1/keys/matters/{ref}``
and ``GET /api/v1/matters/{ref}/events`` (history) and every websocket
``event`` frame, the way a compromised server would. It also keeps the
bodies of ``POST /api/v1/matters/{ref}/events`` (what a page really sent).

Websocket frames go through ASGI only with uvicorn's portable websocket
implementation (``ws="websockets"``): rtportal's native transport writes
frames straight to the socket, so the tampered server runs the ASGI
endpoint (the same protocol core).

A client's events carry cursor tokens, not seqs (protocol v2). The server
holds the key, and so does a compromised one: ``events`` rules see and
return seqs; the layer reads a client's tokens back and makes new ones for
what the rule returns (``matter_ids`` names the matters it may read).

The records an attacker needs are made with the rtp1 library here: a
certificate "signed" by a root key nobody pinned, a manifest chained onto
the real head but signed by such a key, an envelope under a key the
attacker chose.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rtportal import base64url
from rtportal.crypto.certs import FRK_ISSUER, CertBody, Certificate, Flag, Role, issue
from rtportal.crypto.envelope import CTYPE_BODY, Body, Envelope, Header, Visibility, seal_envelope
from rtportal.crypto.kdf import commitment, message_key
from rtportal.crypto.keys import FirmRootKey, IdentityKey
from rtportal.crypto.manifest import (
    EpochHead,
    HeadBody,
    Manifest,
    ManifestBody,
    Member,
    sign_head,
    sign_manifest,
)

__all__ = ["Attacker", "Tamper", "b64", "unb64"]

JsonRule = Callable[[dict[str, Any]], dict[str, Any]]
EventRule = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]

KEYS_FIRM = re.compile(r"^/api/v1/keys/firm$")
KEYS_MATTER = re.compile(r"^/api/v1/keys/matters/([^/]+)$")
EVENTS = re.compile(r"^/api/v1/matters/([^/]+)/events$")


def b64(data: bytes) -> str:
    return base64url.encode(data)


def unb64(text: str) -> bytes:
    data = base64url.decode(text, 1 << 20)
    assert data is not None
    return data


@dataclass
class Tamper:
    """The tampering layer (see module docstring). ``rules`` maps a path pattern to a
    rewrite of its JSON answer; ``events`` rewrites history pages and live frames."""

    app: ASGIApp
    rules: list[tuple[re.Pattern[str], JsonRule]] = field(default_factory=list)
    events: EventRule | None = None
    posted: list[dict[str, Any]] = field(default_factory=list)
    rewrites: int = 0
    matter_ids: dict[str, int] = field(default_factory=dict)  # ref -> id, for tokens

    def _apply(self, rule: EventRule, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``rule`` over seqs; a client's answer gets tokens again (see the docstring)."""
        tokens = any("cursor" in e for e in events)
        if not tokens:
            return rule(events)
        codec = self.app.state.runtime.frames.cursors  # type: ignore[attr-defined]
        opened = []
        for e in events:
            seq = codec.seq_of(e["cursor"], self.matter_ids[e["matter"]])
            opened.append({**{k: v for k, v in e.items() if k != "cursor"}, "seq": seq})
        out = []
        for e in rule(opened):
            token = codec.event_token(self.matter_ids[e["matter"]], e["seq"])
            out.append({**{k: v for k, v in e.items() if k != "seq"}, "cursor": token})
        return out

    @property
    def state(self) -> Any:
        """The wrapped app's state (``running_server`` reads its settings there)."""
        return getattr(self.app, "state", None)

    def clear(self) -> None:
        self.rules.clear()
        self.events = None

    def on(self, pattern: re.Pattern[str], rule: JsonRule) -> None:
        self.rules.append((pattern, rule))

    def _rule_for(self, scope: Scope) -> JsonRule | None:
        path = scope["path"]
        if scope["method"] != "GET":
            return None
        found = [rule for pattern, rule in self.rules if pattern.match(path)]
        if self.events is not None and EVENTS.match(path):
            events = self.events

            def history(page: dict[str, Any]) -> dict[str, Any]:
                return {**page, "events": self._apply(events, list(page["events"]))}

            found.append(history)
        if not found:
            return None

        def chained(data: dict[str, Any]) -> dict[str, Any]:
            for rule in found:
                data = rule(data)
            return data

        return chained

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if scope["method"] == "POST" and EVENTS.match(scope["path"]):
                receive = self._keep_post(receive)
            rule = self._rule_for(scope)
            if rule is not None:
                await self.app(scope, receive, self._rewrite_http(send, rule))
                return
        if scope["type"] == "websocket":
            await self.app(scope, receive, self._rewrite_ws(send))
            return
        await self.app(scope, receive, send)

    def _keep_post(self, receive: Receive) -> Receive:
        chunks: list[bytes] = []

        async def keep() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    try:
                        self.posted.append(json.loads(b"".join(chunks)))
                    except ValueError:
                        pass  # not JSON: the app answers bad_request
            return message

        return keep

    def _rewrite_http(self, send: Send, rule: JsonRule) -> Send:
        start: dict[str, Any] = {}
        body: list[bytes] = []

        async def rewrite(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            body.append(message.get("body", b""))
            if message.get("more_body"):
                return
            data = b"".join(body)
            if start.get("status") == 200:
                data = json.dumps(rule(json.loads(data))).encode()
                self.rewrites += 1
            headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(data)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": data})

        return rewrite

    def _rewrite_ws(self, send: Send) -> Send:
        async def rewrite(message: Message) -> None:
            text = message.get("text") if message["type"] == "websocket.send" else None
            if self.events is None or text is None:
                await send(message)
                return
            frame = json.loads(text)
            if not isinstance(frame, dict) or frame.get("type") != "event":
                await send(message)
                return
            self.rewrites += 1
            for out in self._apply(self.events, [frame]):
                await send({"type": "websocket.send", "text": json.dumps(out)})

        return rewrite


class Attacker:
    """Records a malicious server can make: it holds no key anybody certified, so it
    makes its own root key and certifies its own keys with it."""

    def __init__(self, firm: str) -> None:
        self.firm = firm
        self.frk = FirmRootKey.generate()
        self.keys: dict[str, IdentityKey] = {}
        self.serial = 1000

    def key(self, user: str) -> IdentityKey:
        return self.keys.setdefault(user, IdentityKey.generate())

    def cert(
        self, user: str, role: Role, *, issuer: str = FRK_ISSUER, scopes: tuple[str, ...] = ()
    ) -> Certificate:
        """A certificate of the attacker's key for ``user``, signed by its own root (or by
        another of its keys, for a client certificate)."""
        k = self.key(user)
        self.serial += 1
        signer: FirmRootKey | IdentityKey = self.frk if issuer == FRK_ISSUER else self.keys[issuer]
        body = CertBody(
            self.firm, role, user, k.public.x_pk, k.public.ed_pk, self.serial, 0, 0,
            Flag.CERTIFY_CLIENTS if role is Role.STAFF else Flag(0), scopes, issuer, signer.kid,
        )  # fmt: skip
        return issue(body, signer)


def next_manifest(
    prev: ManifestBody,
    *,
    members: tuple[Member, ...],
    creator: str,
    key: IdentityKey,
    ts_ms: int,
    epoch: int | None = None,
    prev_hash: bytes | None = None,
) -> tuple[Manifest, bytes]:
    """A manifest after ``prev`` (or, with ``epoch``/``prev_hash``, a rival of it), signed
    by ``key``, with a fresh epoch key; returns it and the key."""
    mek = secrets.token_bytes(32)
    number = prev.epoch + 1 if epoch is None else epoch
    body = ManifestBody(
        prev.firm, prev.matter, number, prev.hash if prev_hash is None else prev_hash,
        prev.fek_version, members, prev.share_history, creator, key.kid, ts_ms,
        commitment(mek, prev.firm, prev.matter, number),
    )  # fmt: skip
    return sign_manifest(body, key), mek


def head_of(m: ManifestBody, *, signer: str, key: IdentityKey, ts_ms: int) -> EpochHead:
    return sign_head(HeadBody(m.firm, m.matter, m.epoch, m.hash, ts_ms, signer, key.kid), key)


def envelope(
    *,
    firm: str,
    matter: str,
    thread: str,
    epoch: int,
    mek: bytes,
    sender: str,
    key: IdentityKey,
    text: str,
    ts_ms: int,
) -> bytes:
    """A message sealed with ``mek`` and signed by ``key`` as ``sender``."""
    h = Header(
        firm, matter, thread, secrets.token_bytes(16), None, sender, key.kid, epoch,
        Visibility.PORTAL, ts_ms, CTYPE_BODY,
    )  # fmt: skip
    env = seal_envelope(h, message_key(mek, firm, matter, epoch), Body("", text).encode(), key)
    return env.encode()


def epoch_of(blob: str) -> int:
    return Envelope.decode(unb64(blob)).header.epoch
