"""The exceptions Nexus raises.

Every one is a :class:`NexusError` with a stable ``code``. A failed
``ask`` raises :class:`NoAcceptableAnswer` with the ``attempts`` and, as its
``__cause__``, the last provider error (a :class:`RateLimitError`, say). An
exception raised by a Python vault is kept as the ``__cause__`` of the
:class:`VaultError` it turned into.
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any, Optional, Sequence

if TYPE_CHECKING:
    from ._nexus import Attempt

__all__ = [
    "NexusError",
    "AuthError",
    "RateLimitError",
    "QuotaExceededError",
    "BudgetExceeded",
    "InvalidRequestError",
    "NetworkError",
    "TimeoutError",
    "ProviderError",
    "NoAcceptableAnswer",
    "ConfigError",
    "VaultError",
    "InternalError",
    "MeshError",
]


class NexusError(Exception):
    """Base class of every Nexus error."""

    code: str
    """Stable snake_case class of the failure (``rate_limited``, ...)."""
    provider: Optional[str]
    """The provider that failed, if one did."""
    status: Optional[int]
    """The HTTP status, if there was one."""
    request_id: Optional[str]
    """The provider's request id, for support tickets."""
    retry_after: Optional[float]
    """Seconds the provider asked to wait before retrying."""
    attempts: Sequence["Attempt"]
    """The attempts of a failed ``ask``, in order."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "internal",
        provider: Optional[str] = None,
        status: Optional[int] = None,
        request_id: Optional[str] = None,
        retry_after: Optional[float] = None,
        attempts: Sequence["Attempt"] = (),
        **_: Any,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.provider = provider
        self.status = status
        self.request_id = request_id
        self.retry_after = retry_after
        self.attempts = list(attempts)


class AuthError(NexusError):
    """No key, or the key or token was rejected."""


class RateLimitError(NexusError):
    """Too many requests; ``retry_after`` says how long to wait."""


class QuotaExceededError(NexusError):
    """The account is out of credit or quota. Retrying will not help."""


class BudgetExceeded(NexusError):
    """The daily or per-request budget stops the request."""


class InvalidRequestError(NexusError, ValueError):
    """The request was malformed, too long, or named an unknown model."""


class NetworkError(NexusError, builtins.ConnectionError):
    """The connection failed or dropped."""


class TimeoutError(NexusError, builtins.TimeoutError):
    """A connect, request or stream-idle timeout fired."""


class ProviderError(NexusError):
    """The provider failed: a 5xx, an overload, a content-policy refusal or
    a response that breaks its own protocol."""


class NoAcceptableAnswer(NexusError):
    """Every tier of the hierarchy failed, refused or was rejected."""


class ConfigError(NexusError, ValueError):
    """Configuration or input is wrong: config.toml, a category, a preset, a
    secret name."""


class VaultError(NexusError):
    """The vault failed or is locked."""


class InternalError(NexusError):
    """A bug or an environment failure."""


class MeshError(NexusError):
    """The mesh refused or failed: not a member, no such peer, blocked, no
    mesh key yet, or a refusal from the broker."""
