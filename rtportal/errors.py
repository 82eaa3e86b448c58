"""One exception tree for rtportal, each error with a stable code.

Codes are part of the public API (HTTP JSON bodies, websocket ``error``
frames, CLI exit messages) and never change meaning once released. Add new
codes; never reuse an old one.

==========================  ======  ==============================================
code                        HTTP    meaning
==========================  ======  ==============================================
``bad_request``             400     malformed input (JSON, frame, field type)
``invalid_cursor``          400     a cursor/token that does not parse
``protocol_version``        400     a websocket client's version is not supported
``payload_too_large``       413     a body, frame or upload over its limit
``unauthenticated``         401     no or bad credentials
``forbidden_origin``        403     websocket/HTTP Origin not allowed
``not_found``               404     no such object *for this caller* (also used
                                    for objects of another matter: never 403)
``conflict``                409     idempotency key reused with other content
``rate_limited``            429     too many attempts
``unavailable``             503     a backend (database, broker) is unreachable
``internal``                500     a bug; never raised on purpose
``crypto_invalid``          422     a cryptographic object failed verification
``crypto_*``                422     its subclasses in ``rtportal/crypto/errors.py``
                                    (``crypto_signature``, ``crypto_replay``, …;
                                    table in docs/security.md §12)
``invalid_config``          500     a setting (URL, path, value) rtportal cannot use
``forbidden``               403     a staff member whose role may not do this
                                    (only for callers who may see the object)
``csrf_failed``             403     a cookie-authenticated write without a valid
                                    ``X-CSRF-Token`` header
``invalid_credentials``     401     wrong email, password or second factor; the
                                    same answer for an unknown or removed user
``second_factor_required``  401     the password was right; a TOTP code (or a
                                    recovery code) is needed too
``invalid_link``            400     an invite or setup link that is unknown, used,
                                    superseded by a resend, or expired
``invalid_passcode``        400     a wrong or expired SMS passcode (the invite's
                                    tries are counted; after 5 it is locked)
``precondition_failed``     422     the request is valid but the object is not in
                                    a state that allows it (``details.reason``:
                                    ``contact_no_email``, ``contact_no_mobile``,
                                    ``invite_not_pending``, ``weak_password``, …)
``epoch_conflict``          409     a matter's next epoch was posted by someone else
                                    first (``details``: the stored ``epoch`` and
                                    ``head``): re-base on it
``version_conflict``        409     a revocation list or escrow record is not the
                                    stored newest version + 1 (``details.version``)
``frk_exists``              409     the firm's root key is set already (set once)
``frk_missing``             409     the firm has no root key yet
``key_not_certified``       403     the signing key is not a certified, unrevoked key
                                    of the writer (or of this matter)
``stale_epoch``             409     a message under an epoch other than the matter's
                                    newest (``details.epoch``)
``e2ee_required``           409     the firm or matter is end-to-end encrypted: the
                                    request must carry its ``crypto`` / ``blob``
``file_too_large``          413     an uploaded file's ciphertext is over the firm's
                                    file limit (``details.limit``; docs/files.md)
``portal_quota_exceeded``   413     the matter has no room left for the file
                                    (``details.quota``; docs/files.md)
==========================  ======  ==============================================

Errors of other libraries are mapped to this tree once, at a boundary, and
never leaked to clients: database errors to ``Unavailable`` by
``rtportal.db.engine.Database``; broker errors never reach callers (brokers
queue publishes and reconnect); what reaches a client boundary is mapped by
``rtportal.http.errors.json_endpoint`` (HTTP) and
``rtportal.ws.admission.as_error`` / ``refusal`` (websocket): an ``RtPortalError``
keeps its code, anything else is ``internal``.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "BadRequest",
    "Conflict",
    "CryptoInvalid",
    "CsrfFailed",
    "E2eeRequired",
    "EpochConflict",
    "FileTooLarge",
    "Forbidden",
    "ForbiddenOrigin",
    "FrkExists",
    "FrkMissing",
    "InvalidConfig",
    "InvalidCredentials",
    "InvalidCursor",
    "InvalidLink",
    "InvalidPasscode",
    "KeyNotCertified",
    "NotFound",
    "PayloadTooLarge",
    "PortalQuotaExceeded",
    "PreconditionFailed",
    "ProtocolVersion",
    "RateLimited",
    "RtPortalError",
    "SecondFactorRequired",
    "StaleEpoch",
    "Unauthenticated",
    "Unavailable",
    "VersionConflict",
]


class RtPortalError(Exception):
    """Base of every error rtportal raises on purpose."""

    code: ClassVar[str] = "internal"
    http_status: ClassVar[int] = 500

    def __init__(self, message: str = "", **details: Any) -> None:
        super().__init__(message or self.code)
        self.message = message or self.code
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        """The JSON body sent to a client: code, message, optional details."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class BadRequest(RtPortalError):
    code = "bad_request"
    http_status = 400


class InvalidCursor(BadRequest):
    code = "invalid_cursor"


class ProtocolVersion(BadRequest):
    """A websocket client that did not say a supported version in its ``hello``
    (``details.supported``); the connection is closed with 4006."""

    code = "protocol_version"


class PayloadTooLarge(RtPortalError):
    code = "payload_too_large"
    http_status = 413


class FileTooLarge(PayloadTooLarge):
    """An upload's ciphertext passed the firm's per-file limit (counted as it arrives)."""

    code = "file_too_large"


class PortalQuotaExceeded(PayloadTooLarge):
    """A matter's stored and reserved files leave no room for this upload."""

    code = "portal_quota_exceeded"


class Unauthenticated(RtPortalError):
    code = "unauthenticated"
    http_status = 401


class ForbiddenOrigin(RtPortalError):
    code = "forbidden_origin"
    http_status = 403


class NotFound(RtPortalError):
    code = "not_found"
    http_status = 404


class Conflict(RtPortalError):
    code = "conflict"
    http_status = 409


class RateLimited(RtPortalError):
    code = "rate_limited"
    http_status = 429


class Unavailable(RtPortalError):
    code = "unavailable"
    http_status = 503


class CryptoInvalid(RtPortalError):
    code = "crypto_invalid"
    http_status = 422


class InvalidConfig(RtPortalError):
    """Operator error found at start (bad URL scheme, bad value): fix the setting."""

    code = "invalid_config"
    http_status = 500


class Forbidden(RtPortalError):
    """A staff member's role does not allow the action (never for other firms' objects: 404)."""

    code = "forbidden"
    http_status = 403


class CsrfFailed(RtPortalError):
    code = "csrf_failed"
    http_status = 403


class InvalidCredentials(Unauthenticated):
    code = "invalid_credentials"


class SecondFactorRequired(Unauthenticated):
    code = "second_factor_required"


class InvalidLink(BadRequest):
    code = "invalid_link"


class InvalidPasscode(BadRequest):
    code = "invalid_passcode"


class PreconditionFailed(RtPortalError):
    """Valid request, wrong state; ``details["reason"]`` names which precondition."""

    code = "precondition_failed"
    http_status = 422

    def __init__(self, reason: str, message: str = "", **details: Any) -> None:
        super().__init__(message or reason.replace("_", " "), reason=reason, **details)


class EpochConflict(Conflict):
    code = "epoch_conflict"


class VersionConflict(Conflict):
    code = "version_conflict"


class FrkExists(Conflict):
    code = "frk_exists"


class FrkMissing(Conflict):
    code = "frk_missing"


class StaleEpoch(Conflict):
    code = "stale_epoch"


class E2eeRequired(Conflict):
    code = "e2ee_required"


class KeyNotCertified(RtPortalError):
    code = "key_not_certified"
    http_status = 403
