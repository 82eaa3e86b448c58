"""Verify a golden-vector directory written by either language (docs/security.md §13).

For every ``ok`` case the derived bytes are rebuilt from the case's inputs and
compared (everything in rtp1 is deterministic once randomness is injected),
then the transport object is decoded and opened through a :class:`Directory`
exactly as a client would. Every ``reject`` case must raise an rtp1 error.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rtportal.crypto import attachment as att
from rtportal.crypto import backup as bk
from rtportal.crypto import encoding as enc
from rtportal.crypto import kdf
from rtportal.crypto import recovery as rec
from rtportal.crypto.certs import CertBody, Certificate, Flag, Revocation, RevocationBody, Role
from rtportal.crypto.directory import Directory
from rtportal.crypto.envelope import Body, Envelope, Header, Visibility, seal_envelope
from rtportal.crypto.keys import (
    FirmEscrowKey,
    FirmRootKey,
    FirmRootPublic,
    IdentityKey,
    IdentityPublic,
)
from rtportal.crypto.manifest import Manifest, ManifestBody, Member
from rtportal.crypto.wrap import FEK_RECIPIENT, WrapInfo, WrapKind, wrap_key
from rtportal.errors import CryptoInvalid
from tests.support.crypto.vectors import FILES, pattern

__all__ = ["Report", "VectorMismatch", "verify_dir"]

_PIECE = 10_007  # feed streams in odd-sized pieces so chunk seams are exercised

Case = dict[str, Any]


class VectorMismatch(Exception):
    """A rebuilt value differs from the vector."""


_HEX = re.compile(r"(?:[0-9a-f]{2})*")


def u(value: str) -> bytes:
    """Strict lowercase hex (§13): ``bytes.fromhex`` alone also takes spaces and upper case."""
    if not isinstance(value, str) or not _HEX.fullmatch(value):
        raise VectorMismatch(f"not lowercase hex: {str(value)[:40]!r}")
    return bytes.fromhex(value)


def eq(got: bytes | str | int | object, want: object, what: str) -> None:
    if got != want:
        g = got.hex() if isinstance(got, bytes) else got
        w = want.hex() if isinstance(want, bytes) else want
        raise VectorMismatch(f"{what}: got {g!s:.80}, vector has {w!s:.80}")


@dataclass
class Report:
    passed: int = 0
    warnings: int = 0
    failures: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    def fail(self, msg: str) -> None:
        self.failures.append(msg)
        self.lines.append(f"FAIL {msg}")


class _Verifier:
    def __init__(self, report: Report, strict_codes: bool) -> None:
        self.r = report
        self.strict = strict_codes
        self.users: dict[str, Case] = {}
        self.frk: Case = {}
        self.fek: Case = {}
        self.dir: Directory | None = None
        self.pending_revocations: list[Case] = []

    # ---- plumbing -----------------------------------------------------
    def run(
        self, file: str, case: Case, ok: Callable[[Case], None], reject: Callable[[Case], None]
    ) -> None:
        name = f"{file}:{case.get('name', '?')}"
        if case.get("expect", "ok") == "ok":
            try:
                ok(case)
            except Exception as e:  # every failure is reported, none stops the run
                self.r.fail(f"{name}: {type(e).__name__}: {e}")
                return
            self.r.passed += 1
            return
        try:
            reject(case)
        except CryptoInvalid as e:
            want = case.get("error")
            if want and e.code != want:
                msg = f"{name}: rejected with {e.code}, vector names {want} ({e})"
                if self.strict:
                    self.r.fail(msg)
                    return
                self.r.warnings += 1
                self.r.lines.append(f"WARN {msg}")
            self.r.passed += 1
            return
        except Exception as e:
            self.r.fail(f"{name}: rejected with a non-rtp1 error {type(e).__name__}: {e}")
            return
        self.r.fail(f"{name}: accepted, but the vector expects a rejection")

    @property
    def d(self) -> Directory:
        if self.dir is None:
            raise VectorMismatch("keys.json has no frk case")
        return self.dir

    def identity(self, user: str) -> IdentityKey:
        c = self.users.get(user)
        if c is None:
            raise VectorMismatch(f"no key for user {user}")
        return IdentityKey(u(c["x_sk"]), u(c["ed_sk"]))

    def signer(self, name: str) -> FirmRootKey | IdentityKey:
        return FirmRootKey(u(self.frk["ed_sk"])) if name == "frk" else self.identity(name)

    def fek_key(self) -> FirmEscrowKey:
        c = self.fek
        return FirmEscrowKey(c["firm"], c["version"], u(c["x_sk"]), u(c["fir"]))

    # ---- keys ---------------------------------------------------------
    def keys(self, case: Case) -> None:
        t = case["type"]
        if t == "frk":
            k = FirmRootKey(u(case["ed_sk"])).public
            self.frk = case
            self.dir = Directory(case["firm"], FirmRootPublic(k.ed_pk))
            eq(k.ed_pk, u(case["ed_pk"]), "ed_pk")
            eq(k.record(), u(case["record"]), "record")
            eq(k.fingerprint, u(case["fingerprint"]), "fingerprint")
            eq(k.kid, u(case["kid"]), "kid")
            eq(k.fingerprint_text, case["fingerprint_text"], "fingerprint_text")
            eq(k.link, case["link"], "link")
        elif t == "uik":
            ik = IdentityKey(u(case["x_sk"]), u(case["ed_sk"]))
            eq(ik.public.x_pk, u(case["x_pk"]), "x_pk")
            eq(ik.public.ed_pk, u(case["ed_pk"]), "ed_pk")
            eq(ik.public.record(), u(case["record"]), "record")
            eq(ik.public.fingerprint, u(case["fingerprint"]), "fingerprint")
            eq(ik.kid, u(case["kid"]), "kid")
            eq(ik.key_file(case["firm"], case["user"]), u(case["key_file"]), "key_file")
            eq(
                IdentityKey.from_key_file(u(case["key_file"])),
                (case["firm"], case["user"], ik),
                "key_file decode",
            )
            self.users[case["user"]] = case
        elif t == "fek":
            fek = FirmEscrowKey(case["firm"], case["version"], u(case["x_sk"]), u(case["fir"]))
            eq(fek.public.x_pk, u(case["x_pk"]), "x_pk")
            eq(fek.public.record(), u(case["record"]), "record")
            eq(fek.kid, u(case["kid"]), "kid")
            self.fek = case
        elif t == "kdf":
            info = kdf.derivation_info(case["label"], *(u(c) for c in case["ctx"]))
            eq(info, u(case["info"]), "info")
            okm = kdf.hkdf(u(case["ikm"]), u(case["salt"]), info, case["length"])
            eq(okm, u(case["okm"]), "okm")
        elif t == "commit":
            mek, firm, matter, epoch = u(case["mek"]), case["firm"], case["matter"], case["epoch"]
            info = kdf.derivation_info(
                "rtp1/commit", enc.id_(firm), enc.id_(matter), enc.u32(epoch)
            )
            eq(info, u(case["input"]), "input")
            eq(kdf.commitment(mek, firm, matter, epoch), u(case["commit"]), "commit")
        else:
            raise VectorMismatch(f"unknown key case type {t}")

    # ---- certificates -------------------------------------------------
    @staticmethod
    def _cert(case: Case) -> Certificate:
        return Certificate.decode(u(case["cert"]))

    def cert_ok(self, case: Case) -> None:
        if case.get("type") == "revocation":
            self.revocation(case)
            return
        body = CertBody(
            case["firm"],
            Role(case["role"]),
            case["user"],
            u(case["x_pk"]),
            u(case["ed_pk"]),
            case["serial"],
            case["issued_at_ms"],
            case["expires_at_ms"],
            Flag(case["flags"]),
            tuple(case["scopes"]),
            case["issuer_id"],
            u(case["issuer_kid"]),
        )
        eq(body.encode(), u(case["tbs"]), "tbs")
        eq(self.signer(case["issuer"]).sign(body.encode()), u(case["sig"]), "sig")
        eq(Certificate(body, u(case["sig"])).encode(), u(case["cert"]), "cert")
        eq(self._cert(case).body, body, "decoded cert")
        self.d.add_certificate(u(case["cert"]), case["now_ms"])

    def cert_reject(self, case: Case) -> None:
        self.d.add_certificate(u(case["cert"]), case["now_ms"])

    def revocation(self, case: Case) -> None:
        body = RevocationBody(
            case["firm"],
            case["user"],
            u(case["kid"]),
            case["serial"],
            case["revoked_at_ms"],
            case["issuer_id"],
            u(case["issuer_kid"]),
        )
        eq(body.encode(), u(case["rtbs"]), "rtbs")
        eq(self.signer(case["issuer"]).sign(body.encode()), u(case["sig"]), "sig")
        eq(Revocation(body, u(case["sig"])).encode(), u(case["revocation"]), "revocation")
        self.pending_revocations.append(case)

    # ---- manifests ----------------------------------------------------
    def manifest_ok(self, case: Case) -> None:
        mek = u(case["mek"])
        commit = kdf.commitment(mek, case["firm"], case["matter"], case["epoch"])
        eq(commit, u(case["commit"]), "commit")
        members = tuple(Member(m["user"], u(m["kid"]), Role(m["role"])) for m in case["members"])
        body = ManifestBody(
            case["firm"],
            case["matter"],
            case["epoch"],
            u(case["prev_hash"]),
            case["fek_version"],
            members,
            case["share_history"],
            case["creator"],
            u(case["creator_kid"]),
            case["ts_ms"],
            commit,
        )
        eq(body.encode(), u(case["tbs"]), "tbs")
        eq(self.identity(case["creator"]).sign(body.encode()), u(case["sig"]), "sig")
        eq(Manifest(body, u(case["sig"])).encode(), u(case["manifest"]), "manifest")
        eq(body.hash, u(case["hash"]), "hash")
        self.d.accept_manifest(u(case["manifest"]), case["verifier_matter"], case["now_ms"])
        self.d.add_mek(case["matter"], case["epoch"], mek)

    def manifest_reject(self, case: Case) -> None:
        st = self.d.matter(case["verifier_matter"])
        before = (st.last_epoch, st.last_hash)
        try:
            self.d.accept_manifest(u(case["manifest"]), case["verifier_matter"], case["now_ms"])
        finally:
            if (st.last_epoch, st.last_hash) != before:
                raise VectorMismatch("a rejected manifest changed the verifier state")

    # ---- wraps ----------------------------------------------------------
    def _recipient_sk(self, recipient_id: str) -> bytes:
        if recipient_id == FEK_RECIPIENT:
            return u(self.fek["x_sk"])
        return self.identity(recipient_id).x_sk

    @staticmethod
    def _info(c: Case) -> WrapInfo:
        return WrapInfo(
            c["firm"],
            c["matter"],
            c["epoch"],
            WrapKind(c["kind"]),
            c["recipient_id"],
            u(c["recipient_kid"]),
        )

    def wrap_ok(self, case: Case) -> None:
        info = self._info(case)
        eq(info.encode(), u(case["info"]), "info")
        if info.recipient == FEK_RECIPIENT:
            pk = FirmEscrowKey(
                self.fek["firm"], self.fek["version"], u(self.fek["x_sk"]), u(self.fek["fir"])
            ).public.x_pk
        else:
            pk = self.identity(info.recipient).public.x_pk
        w = wrap_key(
            u(case["key"]),
            info,
            pk,
            case["wrapper"],
            self.identity(case["wrapper"]),
            eph_sk=u(case["eph_sk"]),
        )
        eq(w.enc, u(case["enc"]), "enc")
        eq(w.ct, u(case["ct"]), "ct")
        eq(w.sig_input(), u(case["sig_input"]), "sig_input")
        eq(w.sig, u(case["sig"]), "sig")
        eq(w.encode(), u(case["wrap"]), "wrap")
        if case["commit"] is not None:
            eq(self.d.manifest(info.matter, info.epoch).commit, u(case["commit"]), "commit")
        key = self.d.unwrap(
            u(case["wrap"]), info, self._recipient_sk(info.recipient), case["now_ms"]
        )
        eq(key, u(case["key"]), "unwrapped key")

    def wrap_reject(self, case: Case) -> None:
        ctx = {**case, **case.get("expect_context", {})}
        info = self._info(ctx)
        self.d.unwrap(u(case["wrap"]), info, self._recipient_sk(info.recipient), case["now_ms"])

    # ---- envelopes ------------------------------------------------------
    def envelope_ok(self, case: Case) -> None:
        hd = Header(
            case["firm"],
            case["matter"],
            case["thread"],
            u(case["msg_id"]),
            u(case["parent"]) or None,
            case["sender"],
            u(case["sender_kid"]),
            case["epoch"],
            Visibility(case["vis"]),
            case["ts_ms"],
            case["ctype"],
        )
        eq(hd.aad(), u(case["aad"]), "aad")
        key = u(case["key"])
        if hd.vis is Visibility.STAFF:
            version = self.d.manifest(hd.matter, hd.epoch).fek_version
            mkey = kdf.internal_key(key, hd.firm, hd.matter, version)
        else:
            mkey = kdf.message_key(key, hd.firm, hd.matter, hd.epoch)
        eq(mkey, u(case["msg_key"]), "msg_key")
        nonce = u(case["nonce"])
        env = seal_envelope(
            hd, mkey, u(case["plaintext"]), self.identity(case["sender"]), rng=lambda n: nonce[:n]
        )
        eq(env.ct, u(case["ct"]), "ct")
        eq(env.sig_input(), u(case["sig_input"]), "sig_input")
        eq(env.sig, u(case["sig"]), "sig")
        eq(env.encode(), u(case["envelope"]), "envelope")
        eq(Envelope.decode(u(case["envelope"])), env, "decoded envelope")
        _, _, pt = self.d.open_message(
            u(case["envelope"]), matter=case["matter"], thread=case["thread"], now_ms=case["now_ms"]
        )
        eq(pt, u(case["plaintext"]), "plaintext")
        if "body" in case:
            b = Body.decode(pt)
            want = case["body"]
            eq((b.subject, b.text), (want["subject"], want["text"]), "body text")
            got_atts = [
                {
                    "att_id": a.att_id.hex(),
                    "fk": a.fk.hex(),
                    "ct_sha256": a.ct_sha256.hex(),
                    "size": a.size,
                    "name": a.name,
                    "mime": a.mime,
                }
                for a in b.attachments
            ]
            eq(got_atts, want["attachments"], "body attachments")

    def envelope_reject(self, case: Case) -> None:
        ctx = {**case, **case.get("expect_context", {})}
        if ctx["firm"] != self.d.firm:
            raise VectorMismatch("vectors use one firm")
        self.d.open_message(
            u(case["envelope"]), matter=ctx["matter"], thread=ctx["thread"], now_ms=case["now_ms"]
        )

    # ---- attachments ----------------------------------------------------
    @staticmethod
    def _blob(case: Case, base: Path) -> bytes | None:
        if "blob" in case:
            return u(case["blob"])
        if "blob_file" in case:
            return (base / str(case["blob_file"])).read_bytes()
        return None

    @staticmethod
    def _decrypt(case: Case, blob: bytes) -> bytes:
        d = att.AttachmentDecryptor(
            u(case["fk"]), u(case["att_id"]), ct_sha256=u(case["blob_sha256"]), size=case["size"]
        )
        out = [d.update(blob[i : i + _PIECE]) for i in range(0, len(blob), _PIECE)]
        out.append(d.finalize())
        return b"".join(out)

    def attachment_ok(self, case: Case, base: Path) -> None:
        fk, att_id, size = u(case["fk"]), u(case["att_id"]), case["size"]
        eq(kdf.attachment_chunk_key(fk, att_id), u(case["chunk_key"]), "chunk_key")
        eq(att.header(att_id), u(case["header"]), "header")
        plain = pattern(size)
        mine = att.encrypt_bytes(plain, lambda n: att_id if n == 16 else fk)[2]  # the case's ids
        eq(len(mine), att.blob_length(size), "blob length")
        eq(hashlib.sha256(mine).digest(), u(case["blob_sha256"]), "blob_sha256")
        theirs = self._blob(case, base)
        eq(self._decrypt(case, theirs if theirs is not None else mine) == plain, True, "plaintext")

    def attachment_reject(self, case: Case, base: Path) -> None:
        blob = self._blob(case, base)
        if blob is None:
            raise VectorMismatch("a reject case needs its blob")
        self._decrypt(case, blob)

    # ---- backups, recovery ----------------------------------------------
    def backup_ok(self, case: Case) -> None:
        params = bk.Argon2Params(case["m_kib"], case["t"], case["p"])
        salt = u(case["salt"])
        out = bk.argon2id(case["password"].encode("utf-8"), salt, params)
        eq(out, u(case["argon2_out"]), "argon2_out")
        eq(kdf.login_secret(out), u(case["login_secret"]), "login_secret")
        eq(kdf.kek(out), u(case["kek"]), "kek")
        contents = bk.BackupContents(
            IdentityKey(u(case["x_sk"]), u(case["ed_sk"])), u(case["frk_fingerprint"])
        )
        eq(contents.encode(), u(case["plaintext"]), "plaintext")
        nonce = u(case["nonce"])
        b = bk.create_backup(
            case["firm"],
            case["user"],
            kdf.kek(out),
            contents,
            params=params,
            salt=salt,
            rng=lambda n: nonce[:n],
        )
        eq(b.header(), u(case["header"]), "header")
        eq(b.encode(), u(case["blob"]), "blob")
        _, keys, got = bk.open_backup(u(case["blob"]), case["password"])
        eq(keys.login_secret, u(case["login_secret"]), "unlocked login_secret")
        eq(got, contents, "unlocked contents")

    def backup_reject(self, case: Case) -> None:
        bk.open_backup(u(case["blob"]), case["password"])

    def recovery_ok(self, case: Case) -> None:
        code = u(case["code"])
        eq(rec.code_text(code), case["code_text"], "code_text")
        eq(rec.parse_code(case["code_text"]), code, "parse_code")
        eq(rec.code_from_link(case["link"]), code, "code_from_link")
        eq(kdf.recovery_key(code, case["firm"], case["user"]), u(case["rk"]), "rk")
        proof = rec.prove(
            code, case["firm"], case["user"], IdentityPublic(u(case["x_pk"]), u(case["ed_pk"]))
        )
        eq(proof.input(), u(case["input"]), "input")
        eq(proof.proof, u(case["proof"]), "proof")
        eq(proof.encode(), u(case["transport"]), "transport")
        self.recovery_reject(case)

    def recovery_reject(self, case: Case) -> None:
        rec.verify_proof(
            u(case["code"]),
            rec.RecoveryProof.decode(u(case["transport"])),
            firm=case["firm"],
            user=case["user"],
        )


def _cases(doc: Any, file: str) -> Iterator[Case]:
    if (
        not isinstance(doc, dict)
        or doc.get("rtp1_vectors") != 1
        or not isinstance(doc.get("cases"), list)
    ):
        raise VectorMismatch(f"{file} is not an rtp1 vector file")
    yield from doc["cases"]


def verify_dir(path: Path, *, strict_codes: bool = False, skip: Collection[str] = ()) -> Report:
    """Verify every file of §13 in ``path`` (but ``skip``); a missing file is a failure."""
    report = Report()
    v = _Verifier(report, strict_codes)
    docs: dict[str, Any] = {}
    for name in FILES:
        if name in skip:
            continue
        try:
            docs[name] = json.loads((path / name).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            report.fail(f"{name}: cannot read: {e}")
    steps: list[tuple[str, Callable[[Case], None], Callable[[Case], None]]] = [
        ("keys.json", v.keys, v.keys),
        ("certs.json", v.cert_ok, v.cert_reject),
        ("manifests.json", v.manifest_ok, v.manifest_reject),
        ("wraps.json", v.wrap_ok, v.wrap_reject),
        ("envelopes.json", v.envelope_ok, v.envelope_reject),
        (
            "attachments.json",
            lambda c: v.attachment_ok(c, path),
            lambda c: v.attachment_reject(c, path),
        ),
        ("backups.json", v.backup_ok, v.backup_reject),
        ("recovery.json", v.recovery_ok, v.recovery_reject),
    ]
    for name, ok, reject in steps:
        if name not in docs:
            continue
        try:
            cases = list(_cases(docs[name], name))
        except VectorMismatch as e:
            report.fail(str(e))
            continue
        if not cases:
            report.fail(f"{name}: no cases")
        if name == "envelopes.json" and v.fek and v.dir is not None:
            v.dir.add_firm_keys(v.fek_key())
        for case in cases:
            v.run(name, case, ok, reject)
        if name == "certs.json":
            # revocations apply after all certificate cases (§13)
            for case in v.pending_revocations:
                try:
                    v.d.add_revocation(u(case["revocation"]), case["now_ms"])
                except Exception as e:
                    report.fail(f"certs.json:{case.get('name')}: {type(e).__name__}: {e}")
    return report
