"""Nexus: one typed client for every model provider, a model hierarchy that
escalates, exact cost, and an encrypted vault.

>>> import nexus
>>> client = nexus.Client()
>>> reply = client.chat("openai/gpt-4o-mini", "Hello")          # doctest: +SKIP
>>> reply.text, reply.usage.output_tokens, reply.cost           # doctest: +SKIP
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Deque, Optional, Protocol, Sequence, runtime_checkable

from . import errors, types
from ._nexus import (
    AskReply,
    AsyncClient as _AsyncClient,
    Attempt,
    ChatStream,
    Client,
    Preset,
    Reply,
    Route,
    StreamEvent,
    Usage,
    Vault,
    __version__,
)
from .errors import (
    AuthError,
    BudgetExceeded,
    ConfigError,
    InternalError,
    InvalidRequestError,
    NetworkError,
    NexusError,
    NoAcceptableAnswer,
    ProviderError,
    QuotaExceededError,
    RateLimitError,
    TimeoutError,
    VaultError,
)

from .types import Hierarchy, Prompt, Stats

if TYPE_CHECKING:
    from ._nexus import NativeAsyncStream

__all__ = [
    "AskReply",
    "AsyncChatStream",
    "AsyncClient",
    "Attempt",
    "ChatStream",
    "Client",
    "Preset",
    "Reply",
    "Route",
    "StreamEvent",
    "Usage",
    "Vault",
    "VaultProtocol",
    "errors",
    "types",
    "Hierarchy",
    "Prompt",
    "Stats",
    "AuthError",
    "BudgetExceeded",
    "ConfigError",
    "InternalError",
    "InvalidRequestError",
    "NetworkError",
    "NexusError",
    "NoAcceptableAnswer",
    "ProviderError",
    "QuotaExceededError",
    "RateLimitError",
    "TimeoutError",
    "VaultError",
    "__version__",
]


@runtime_checkable
class VaultProtocol(Protocol):
    """What a Python object needs to be a Nexus vault (``Client(vault=...)``).

    Names look like ``namespace/name`` (``provider/openai/api_key``); Nexus
    checks them before calling you. Exceptions you raise reach the caller as
    the ``__cause__`` of a :class:`nexus.VaultError`.
    """

    def get(self, name: str) -> Optional[str]: ...
    def set(self, name: str, value: str) -> None: ...
    def delete(self, name: str) -> bool: ...
    def list(self, prefix: str) -> Sequence[str]: ...


class AsyncChatStream:
    """An async iterator of :class:`StreamEvent`; ``reply`` holds the whole
    answer once it has ended. Events cross from Nexus's threads to the event
    loop in batches, one hop per network read rather than per token."""

    __slots__ = ("_native", "_buf", "_done")

    def __init__(self, native: "NativeAsyncStream") -> None:
        self._native = native
        self._buf: Deque[StreamEvent] = deque()
        self._done = False

    def __aiter__(self) -> "AsyncChatStream":
        return self

    async def __anext__(self) -> StreamEvent:
        if not self._buf:
            if self._done:
                raise StopAsyncIteration
            batch = await self._native.next_batch()
            if not batch:
                self._done = True
                raise StopAsyncIteration
            self._buf.extend(batch)
        return self._buf.popleft()

    @property
    def reply(self) -> Optional[Reply]:
        """The whole answer, once iteration has ended."""
        return self._native.reply()

    async def collect(self) -> Reply:
        """Reads the rest of the stream and returns the whole answer."""
        async for _ in self:
            pass
        reply = self.reply
        if reply is None:
            raise ProviderError("the stream ended without an answer", code="provider")
        return reply


class AsyncClient(_AsyncClient):
    """The asyncio client: ``chat``, ``stream`` and ``ask`` are coroutines
    that run on Nexus's own threads and never block the event loop."""

    async def stream(  # type: ignore[override]
        self,
        model: str,
        prompt: Prompt,
        *,
        system: Optional[str] = None,
        max_tokens: Optional[int] = None,
        temperature: Optional[float] = None,
    ) -> AsyncChatStream:
        native = await super().stream(
            model, prompt, system=system, max_tokens=max_tokens, temperature=temperature
        )
        return AsyncChatStream(native)
