"""Exceptions of the hosted-fill core. Every message is redacted before it is built (no key
ever appears in one) and names what to do next.

HostedError                      base class (``.request_id`` when a remote job exists)
├─ HostedValidationError         bad parameter (also a ValueError): names field and range
├─ InsecureURL                   http:// to a non-loopback host (also a ValueError)
├─ MissingKey                    no key in the environment or the key file
│  └─ InvalidKeyFile             the key file is not valid JSON
├─ AuthError                     401/403 from the provider
├─ RemoteRejected                the provider refused the input (422 / 4xx)
├─ RemoteFailed                  the job ran and failed (not billed)
├─ RemoteCancelled               the user cancelled; the remote job was asked to stop too
│                                (.remote: the cancel answer; .remote_state: its state after,
│                                "cancelled"/"failed"/"gone" = stopped, else it may still
│                                finish and be billed: journal "cancel_requested", resumable)
├─ DeadlineExceeded              the overall deadline passed; the journal entry stays pending
├─ TransportError                retries exhausted / timeouts / malformed answers
│  ├─ SubmitUncertain            a submit whose answer was lost or a 5xx (WaveSpeed: never
│  │                             re-sent; journaled "uncertain"; the next run notes it)
│  └─ OutputRefused              a downloaded output not opened: not PNG/JPEG/WebP, or its
│                                header claims more pixels than the cap (decompression bomb);
│                                the provider journals the paid request "refused" with its id
├─ ResultUnavailable             the result or an output URL is gone (404)
├─ NSFWBlocked                   outputs flagged by the provider's safety checker
└─ SpendLimitExceeded            the run's estimate would take today's spend over the daily
                                 limit (FLUXFILL_DAILY_LIMIT_USD / settings.json); nothing sent
"""
from __future__ import annotations


class HostedError(Exception):
    """Base class; ``request_id`` names the remote job when one exists."""

    def __init__(self, message: str, *, request_id: str | None = None, status: int | None = None):
        super().__init__(message)
        self.request_id = request_id
        self.status = status


class HostedValidationError(HostedError, ValueError):
    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field


class InsecureURL(HostedError, ValueError):
    pass


class MissingKey(HostedError):
    pass


class InvalidKeyFile(MissingKey):
    """The key file exists but is not the JSON object it should be."""


class AuthError(HostedError):
    pass


class RemoteRejected(HostedError):
    pass


class RemoteFailed(HostedError):
    pass


class RemoteCancelled(HostedError):
    """Raised after the remote job was asked to cancel; the node layer turns it into
    ComfyUI's interrupt."""


class DeadlineExceeded(HostedError):
    pass


class TransportError(HostedError):
    pass


class SubmitUncertain(TransportError):
    pass


class OutputRefused(TransportError):
    """``.size`` is the (width, height) the file's header claims, when it could be read."""

    def __init__(self, message: str, *, size: tuple[int, int] | None = None):
        super().__init__(message)
        self.size = size


class ResultUnavailable(HostedError):
    pass


class NSFWBlocked(HostedError):
    """``.result`` carries the FillResult (images + meta with per-image ``nsfw`` flags) so a
    caller may still decide to use the unflagged images."""

    def __init__(self, message: str, *, request_id: str | None = None, result=None):
        super().__init__(message, request_id=request_id)
        self.result = result


class SpendLimitExceeded(HostedError):
    """Refused before anything was uploaded or submitted (core/hosted/spend.py)."""


# ComfyUI shows an exception as "<module>.<class>: <message>" (UI, API runner, /history), and
# it imports this pack under its file-system path: the type would read
# "/…/custom_nodes/ComfyUI-FluxFill.core.hosted.errors.MissingKey". A short, stable module name
# keeps it "fluxfill.MissingKey" on every host (nothing imports these classes by that name).
PUBLIC_MODULE = "fluxfill"
for _error_class in (HostedError, HostedValidationError, InsecureURL, MissingKey, InvalidKeyFile, AuthError,
                     RemoteRejected, RemoteFailed, RemoteCancelled, DeadlineExceeded, TransportError, SubmitUncertain,
                     OutputRefused, ResultUnavailable, NSFWBlocked, SpendLimitExceeded):
    _error_class.__module__ = PUBLIC_MODULE
del _error_class
