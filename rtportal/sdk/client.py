"""The Python client: every flow of docs/keys.md against a real server.

``Client`` joins the pieces: ``Http`` (the network), ``login`` (password ->
login secret and backup), ``sync`` (server records -> a verified
``Directory`` checked against the trust state file), and the sans-I/O flows
(``firmkeys``, ``invitekeys``, ``epochs``, ``messages``) that produce the
request bodies. Before every act the client syncs and verifies; it never
returns content it did not verify (a failed check raises).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rtportal import base64url
from rtportal.crypto.certs import Certificate, Role
from rtportal.crypto.directory import Directory
from rtportal.crypto.envelope import AttachmentDescriptor, Body, Visibility
from rtportal.crypto.keys import FirmRootKey, IdentityPublic
from rtportal.errors import CryptoInvalid, PreconditionFailed
from rtportal.keys.ids import of_kind
from rtportal.sdk import bindings, epochs, firmkeys, invitekeys, messages, records, sync
from rtportal.sdk.clientcore import ClientCore, Invited, K, _b64, identity_public, now_ms, usable
from rtportal.sdk.errors import ApiError, PinMismatch
from rtportal.sdk.files import Attached, download_attachment, upload_attachment
from rtportal.sdk.transport import Outgoing

__all__ = ["Client", "Invited", "identity_public", "now_ms"]


@dataclass(frozen=True, slots=True)
class _Sealing:
    """What one send seals (kept for its retry after a re-key)."""

    thread: str
    text: str
    subject: str
    staff_only: bool
    to: Sequence[int] | None
    edits: str | None
    attachments: tuple[Attached, ...] = ()


def _msg_id_of(item: str) -> bytes:
    """The ``msg_id`` an item id ends with (``<sender>.<msg_id base64url>``)."""
    raw = base64url.decode(item.partition(".")[2], 16)
    if raw is None or len(raw) != 16:
        raise PreconditionFailed("item_id", "not an encrypted item's id")
    return raw


class Client(ClientCore):
    """One person's client: ``ClientCore`` plus sending (with the re-key a removal
    needs) and the staff and org-admin flows."""

    async def send(
        self,
        matter: str,
        *,
        thread: str,
        text: str,
        subject: str = "",
        staff_only: bool = False,
        to: Sequence[int] | None = None,
        edits: str | None = None,
        attachments: Sequence[Attached] = (),
    ) -> int | str:
        """Seal under the newest verified epoch and send over the websocket; returns where
        the event is (its seq, or a contact's cursor token).

        A new ``thread`` opens it (staff name its recipients in ``to``: contact ids
        of client members), an existing one is replied to; ``staff_only``: an
        internal note. ``edits``: the id of the caller's own item (of ``thread``)
        this text replaces. Staff: a write refused ``stale_epoch``
        ``rekey_required`` (a client left the matter without the next epoch)
        posts that epoch without them, then sends again. ``attachments``: files
        uploaded with ``attach`` (their descriptors go into the body, their ids
        into ``payload.files``)."""
        sealing = _Sealing(thread, text, subject, staff_only, to, edits, tuple(attachments))
        try:
            return await self._send(matter, sealing)
        except ApiError as exc:
            if not (
                exc.server_code == "stale_epoch"
                and exc.details.get("reason") == "rekey_required"
                and self.uid is not None
                and self.uid.startswith("s")
            ):
                raise
            await self.rekey_without(matter, exc.details.get("users") or [])
        return await self._send(matter, sealing)

    async def _send(self, matter: str, s: _Sealing) -> int | str:
        d = await self.sync([matter])
        vis = Visibility.STAFF if s.staff_only else Visibility.PORTAL
        parent = None if s.edits is None else _msg_id_of(s.edits)
        env = messages.seal(
            d,
            self.actor,
            matter=matter,
            thread=s.thread,
            body=Body(s.subject, s.text, tuple(a.descriptor for a in s.attachments)),
            now_ms=self.clock(),
            vis=vis,
            parent=parent,
            rng=self.rng,
        )
        to = None if s.to is None else list(s.to)
        files = [a.file_id for a in s.attachments]
        at = await self._out(
            messages.outgoing(matter, s.thread, env, to=to, edits=s.edits, files=files)
        )
        self.state.matter(matter).remember(env.header.msg_id, at)
        self._save()
        return at

    async def _out(self, out: Outgoing) -> int | str:
        # over the websocket; an in-process (ASGI) transport has none, so it posts over HTTP
        if self.websocket:
            [at] = await self.http.send_events([out])
        else:
            [at] = await self.http.post_events([out])
        return at

    async def attach(
        self, matter: str, src: Path, *, name: str | None = None, mime: str = ""
    ) -> Attached:
        """Encrypt the file ``src`` (RTA1) and upload it to ``matter``, for a ``send``."""
        return await upload_attachment(self.http, matter, src, name=name, mime=mime)

    async def fetch(
        self, matter: str, file_id: str, descriptor: AttachmentDescriptor, dst: Path
    ) -> int:
        """Download the file ``file_id`` and decrypt it to ``dst`` against ``descriptor``
        (from a verified item's body); the plaintext size."""
        return await download_attachment(self.http, matter, file_id, descriptor, dst)

    async def delete(self, matter: str, item: str, *, client_id: str | None = None) -> int | str:
        """Delete an item (the caller's own; staff: any); its blobs are erased.
        ``client_id``: the same id again is the same delete (a retry)."""
        audience = "portal"  # the server sets the item's own
        out = Outgoing(matter, "delete", audience, {"item": item}, None)
        if client_id is not None:
            out = Outgoing(matter, "delete", audience, {"item": item}, None, client_id)
        return await self._out(out)

    # ---- staff: epochs ----------------------------------------------------
    async def post_epoch(
        self, bundle: epochs.EpochBundle, certs: Sequence[Certificate] = ()
    ) -> None:
        body = bundle.body()
        if certs:
            body["certs"] = [_b64(c.encode()) for c in certs]
        await self.http.call("POST", f"{K}/matters/{bundle.matter}/epochs", body)

    async def next_epoch_rebased(
        self, matter: str, make: Callable[[Directory], epochs.EpochBundle], *, tries: int = 3
    ) -> epochs.EpochBundle:
        """Make the next epoch from a fresh sync and post it; on ``epoch_conflict`` (another
        staff member's epoch won the compare-and-set) sync again and re-base on theirs."""
        for attempt in range(tries):
            bundle = make(await self.sync([matter]))
            try:
                await self.post_epoch(bundle)
                return bundle
            except ApiError as exc:
                if exc.server_code != "epoch_conflict" or attempt == tries - 1:
                    raise
        raise AssertionError("unreachable")

    async def rekey_without(self, matter: str, users: Iterable[object]) -> epochs.EpochBundle:
        """The next epoch without the clients ``users`` (the server's ``rekey_required``):
        only clients are dropped, whatever the list names."""
        gone = {u for u in users if isinstance(u, str) and u.startswith("c")}
        if not gone:
            raise PreconditionFailed("rekey_required", "the server names no client to drop")

        def make(d: Directory) -> epochs.EpochBundle:
            members = tuple(m for m in epochs.current_members(d, matter) if m.user not in gone)
            return epochs.next_epoch(
                d, self.actor, matter=matter, members=members, now_ms=self.clock(), rng=self.rng
            )

        return await self.next_epoch_rebased(matter, make)

    async def refresh_head(self, matter: str) -> None:
        d = await self.sync([matter])
        head = epochs.refresh_head(d, self.actor, matter=matter, now_ms=self.clock())
        await self.http.call("PUT", f"{K}/matters/{matter}/head", {"head": _b64(head.encode())})

    # ---- staff: clients ---------------------------------------------------
    async def invite(
        self,
        matter: str,
        welcomes: Sequence[tuple[int, str, str]],
        *,
        method: str = "email",
        delivery: str = "own_mail",
    ) -> list[Invited]:
        """Invite ``(contact id, subject, text)``s: keys, next epoch, encrypted welcomes."""
        d = await self.sync([matter])
        bodies = [(cid, Body(subject, text)) for cid, subject, text in welcomes]
        rnd = invitekeys.invite_round(
            d,
            self.actor,
            matter=matter,
            welcomes=bodies,
            delivery=delivery,
            now_ms=self.clock(),
            rng=self.rng,
        )
        body = {
            "invites": [{"contact_id": cid, "method": method} for cid, _, _ in welcomes],
            "crypto": rnd.crypto_body(),
        }
        answer = await self.http.call("POST", f"/api/v1/matters/{matter}/invites", body)
        return [
            self._invited(inv.contact_id, int(iid), inv.secret, answer, d)
            for inv, iid in zip(rnd.invitees, answer["invites"], strict=True)
        ]

    def _invited(
        self, cid: int, iid: int, secret: bytes, answer: dict[str, Any], d: Directory
    ) -> Invited:
        """``links`` (own_mail): ``[{invite, contact_id, token, url}]``; the fragment is ours,
        and so is the page: the link is built on the configured ``public_url``, never the
        server's ``url`` (which could send the secret ``R`` in the fragment to any site)."""
        for entry in answer.get("links") or []:
            if int(entry["contact_id"]) == cid:
                link = invitekeys.accept_link(
                    self.portal_page(), str(entry["token"]), secret, d.frk
                )
                return Invited(cid, int(entry.get("invite", iid)), secret, link)
        return Invited(cid, iid, secret, None)

    async def remove(self, matter: str, *, invite_id: int, contact_id: int) -> None:
        """Remove the client (access), then the next epoch without them."""
        await self.http.call("POST", f"/api/v1/invites/{invite_id}/remove", {})
        user = of_kind("contact", contact_id)
        await self.next_epoch_rebased(
            matter,
            lambda d: invitekeys.removal(
                d, self.actor, matter=matter, user=user, now_ms=self.clock(), rng=self.rng
            ),
        )

    async def regenerate(
        self, matter: str, *, invite_id: int, contact_id: int, delivery: str = "own_mail"
    ) -> Invited:
        """New login details: key from ``R'``, next epoch without the old key, history re-wrapped,
        the old key revoked, the password cleared and the sessions ended, all in
        ``POST /invites/{id}/regenerate``; returns the invite's new link (own_mail)."""
        return await self._relink("regenerate", matter, invite_id, contact_id, delivery)

    async def resend(
        self, matter: str, *, invite_id: int, contact_id: int, delivery: str = "own_mail"
    ) -> Invited:
        """A pending invite's new link with a new ``R'`` (the old key revoked as in regenerate)."""
        return await self._relink("resend", matter, invite_id, contact_id, delivery)

    async def _relink(
        self, act: str, matter: str, invite_id: int, contact_id: int, delivery: str, tries: int = 3
    ) -> Invited:
        """On ``epoch_conflict`` nothing was stored (one transaction): sync and re-base."""
        for attempt in range(tries):
            d = await self.sync([matter])
            reg = invitekeys.regenerate(
                d,
                self.actor,
                matter=matter,
                contact_id=contact_id,
                now_ms=self.clock(),
                rng=self.rng,
            )
            try:
                answer = await self.http.call(
                    "POST",
                    f"/api/v1/invites/{invite_id}/{act}",
                    {"crypto": reg.crypto_body(delivery)},
                )
            except ApiError as exc:
                if exc.server_code != "epoch_conflict" or attempt == tries - 1:
                    raise
                continue
            return self._invited(contact_id, invite_id, reg.invitee.secret, answer, d)
        raise AssertionError("unreachable")

    async def confirm_handover(self, matter: str, *, contact_id: int, code: str) -> None:
        """Staff: the client read out ``code``; check it against the handover the invite
        list shows (signed by the client's certified key), certify the fresh key, revoke
        the invite key, and post the next epoch with the fresh key in its place."""
        listed = await self.http.call("GET", f"/api/v1/matters/{matter}/invites")
        records_ = [
            row["handover"]["record"]
            for row in listed["invites"]
            if row["contact"]["id"] == contact_id and row.get("handover")
        ]
        if not records_:
            raise PreconditionFailed("no_handover", "the client has not handed over a key yet")
        made = invitekeys.confirm_handover(
            await self.sync([matter]),
            self.actor,
            matter=matter,
            contact_id=contact_id,
            handover=sync.decode(records_[0]),
            code=code,
            now_ms=self.clock(),
            rng=self.rng,
        )
        await self.http.call("POST", f"{K}/certs", made.certs_body())
        # revoked before the epoch that drops it: never a member of the newest epoch unrevoked
        await self.http.call("POST", f"{K}/client-revocations", made.revocations_body())
        await self.post_epoch(made.epoch)

    async def confirm_bindings(self, matter: str) -> list[int]:
        """Staff: each client of ``matter`` whose invite key signed a binding to the identity
        they already hold (certified in another matter) gets that identity certified here
        too, the next epoch with it, the history re-wrapped and the invite key revoked; no
        code to compare (docs/keys.md "A second matter"). Returns the contact ids."""
        listed = await self.http.call("GET", f"/api/v1/matters/{matter}/invites")
        done: list[int] = []
        for row in listed["invites"]:
            if not row.get("handover") or row.get("status") != "active":
                continue
            cid = int(row["contact"]["id"])
            # the matters the server says the named key is certified in: verified like any
            # other, and a key certified nowhere is no binding
            readable = set(await self.matters())  # another matter may be closed to me
            others = [r for r in row["handover"].get("certified_in", []) if r in readable]
            d = await self.sync([matter, *others])
            record = sync.decode(row["handover"]["record"])
            try:
                made = bindings.confirm_binding(
                    d,
                    self.actor,
                    matter=matter,
                    contact_id=cid,
                    handover=record,
                    now_ms=self.clock(),
                    rng=self.rng,
                )
            except CryptoInvalid:
                continue  # not a binding (an ordinary handover: compare its code)
            await self.http.call("POST", f"{K}/certs", made.certs_body())
            # revoked before the epoch that drops it, as confirm_handover (the handover order)
            await self.http.call("POST", f"{K}/client-revocations", made.revocations_body())
            await self.post_epoch(made.epoch)
            if made.history:
                await self.http.call("POST", f"{K}/matters/{matter}/wraps", made.wraps_body())
            done.append(cid)
        return done

    # ---- org admin: the firm's keys ---------------------------------------
    async def set_up_firm(self, frk: FirmRootKey) -> firmkeys.FirmSetup:
        """Firm set-up by the signed-in admin: root, identity, cert, FEK v1, revocation list v1."""
        await self.register_identity(frk_fingerprint=frk.public.fingerprint)
        setup = firmkeys.firm_setup(frk, self.actor, now_ms=self.clock(), rng=self.rng)
        await self.http.call("PUT", f"{K}/root", setup.root_body())
        await self.http.call("POST", f"{K}/certs", setup.certs_body())
        await self.http.call("POST", f"{K}/escrow", setup.escrow_body())
        await self.http.call("PUT", f"{K}/revocations", setup.revocations_body())
        self.actor.firm_keys[setup.fek.version] = setup.fek
        return setup

    async def pending_staff(self) -> list[dict[str, Any]]:
        return list((await self.http.call("GET", f"{K}/pending"))["pending"])

    async def approve_pending(
        self, frk: FirmRootKey, *, only: Iterable[str] | None = None
    ) -> list[str]:
        """Certify the staff keys waiting for approval (all, or the rtp1 ids in ``only``)."""
        self._check_frk(frk)
        await self.sync()
        wanted = set(only) if only is not None else None
        pending = [
            (str(p["user"]), identity_public(sync.decode(p["public_keys"])))
            for p in await self.pending_staff()
            if wanted is None or p["user"] in wanted
        ]
        if pending:
            approval = firmkeys.approve_staff(
                frk, self.actor, pending, now_ms=self.clock(), rng=self.rng
            )
            await self.http.call("POST", f"{K}/certs", approval.body())
        return [user for user, _ in pending]

    def _check_frk(self, frk: FirmRootKey) -> None:
        if self.state.frk_fingerprint != frk.public.fingerprint:
            raise PinMismatch("this firm root key file is not the firm's pinned root key")

    async def staff_leaves(self, frk: FirmRootKey, *, staff_id: int) -> list[str]:
        """Disable the member, revoke their keys (``left``), rotate FEK/FIR, and move every
        matter with a chain to a new epoch under it; returns the matters moved."""
        self._check_frk(frk)
        await self.http.call("PATCH", f"/api/v1/staff/{staff_id}", {"status": "disabled"})
        refs = await self.matters()
        firm = await self.http.call("GET", f"{K}/firm")
        d = await self.sync(refs)
        leaving_uid = of_kind("staff", staff_id)
        leaving: list[tuple[str, bytes]] = []
        remaining: list[tuple[str, IdentityPublic]] = []
        for raw in firm["certs"]:
            body = Certificate.decode(sync.decode(raw)).body
            if body.role is not Role.STAFF:
                continue
            if body.user == leaving_uid:
                leaving.append((body.user, body.kid))
            elif usable(d, body.user, body.kid, self.clock()):
                remaining.append((body.user, body.public))
        current = records.decode_revocation_list(sync.decode(firm["revocations"]["list"]))
        rot = firmkeys.rotate_escrow(
            frk,
            self.actor,
            current=current,
            leaving=leaving,
            remaining=sorted(set(remaining), key=lambda r: r[0]),
            now_ms=self.clock(),
            rng=self.rng,
        )
        await self.http.call("PUT", f"{K}/revocations", rot.revocations_body())
        await self.http.call("POST", f"{K}/escrow", rot.escrow_body())
        d = await self.sync(refs)
        moved: list[str] = []
        for ref in refs:
            if d.current_epoch(ref) == 0:
                continue
            await self.next_epoch_rebased(ref, self._same_members(ref))
            moved.append(ref)
        return moved

    def _same_members(self, ref: str) -> Callable[[Directory], epochs.EpochBundle]:
        def make(d: Directory) -> epochs.EpochBundle:
            members = epochs.current_members(d, ref)
            return epochs.next_epoch(
                d, self.actor, matter=ref, members=members, now_ms=self.clock(), rng=self.rng
            )

        return make
