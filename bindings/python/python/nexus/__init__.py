"""Nexus: one typed client for every model provider, a model hierarchy that
escalates, exact cost, and an encrypted vault.

>>> import nexus
>>> client = nexus.Client()
>>> reply = client.chat("openai/gpt-4o-mini", "Hello")          # doctest: +SKIP
>>> reply.text, reply.usage.output_tokens, reply.cost           # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import weakref
from collections import deque
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Deque,
    Dict,
    List,
    Mapping,
    Optional,
    Protocol,
    Sequence,
    Tuple,
    runtime_checkable,
)

from . import errors, types
from ._nexus import (
    AskReply,
    AsyncClient as _AsyncClient,
    Completions as _Completions,
    Attempt,
    ChatStream,
    Client,
    Preset,
    Reply,
    Route,
    StreamEvent,
    ToolRun,
    Usage,
    Mesh,
    MeshFollow,
    Vault,
    __version__,
)
from .errors import (
    AuthError,
    BudgetExceeded,
    ConfigError,
    InternalError,
    InvalidRequestError,
    MeshError,
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
    "ToolRun",
    "AsyncToolRun",
    "tool_result",
    "Usage",
    "Mesh",
    "MeshFollow",
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
    "MeshError",
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


class _Bridge:
    """Delivers results of Nexus's async calls to one event loop.

    A finished call leaves its result in Rust and writes one byte to a pipe
    the loop watches; the loop's reader callback converts the results on
    its own thread. Nexus's threads never touch Python.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        r, w = os.pipe()
        os.set_blocking(r, False)
        os.set_blocking(w, False)
        self.native = _Completions(w)  # owns w from here on
        self._r = r
        self._loop = loop
        self._futures: Dict[int, "asyncio.Future[Any]"] = {}
        loop.add_reader(r, self._on_ready)
        weakref.finalize(loop, _close_fd, r)

    async def wait(self, token: int) -> Any:
        fut: "asyncio.Future[Any]" = self._loop.create_future()
        self._futures[token] = fut
        return await fut

    def _on_ready(self) -> None:
        try:
            os.read(self._r, 65536)
        except (BlockingIOError, InterruptedError):
            pass
        for token, ok, value in self.native.take():
            fut = self._futures.pop(token, None)
            if fut is None or fut.done():
                continue
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)


def _close_fd(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


_bridges: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Bridge]" = (
    weakref.WeakKeyDictionary()
)


def _bridge() -> _Bridge:
    loop = asyncio.get_running_loop()
    b = _bridges.get(loop)
    if b is None:
        b = _bridges[loop] = _Bridge(loop)
    return b


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
            bridge = _bridge()
            batch: List[StreamEvent] = await bridge.wait(self._native._start_next_batch(bridge.native))
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


def _result_part(call_id: str, content: str, is_error: bool) -> Dict[str, Any]:
    part: Dict[str, Any] = {"type": "tool_result", "call_id": call_id, "content": content}
    if is_error:
        part["is_error"] = True
    return part


def tool_result(call_id: str, content: str, is_error: bool = False) -> Dict[str, Any]:
    """A user message carrying a tool's output for the call ``call_id``, to
    append after ``reply.assistant_message()`` in a hand-written tool loop."""
    return {"role": "user", "content": [_result_part(call_id, content, is_error)]}


class AsyncToolRun:
    """What ``AsyncClient.run_tools`` gives back (``ToolRun``'s fields)."""

    def __init__(
        self,
        reply: Reply,
        messages: List[Dict[str, Any]],
        calls: List[Tuple[str, str, str]],
        rounds: int,
        cost: Optional[float],
    ) -> None:
        self.reply = reply
        self.messages = messages
        self.calls = calls
        self.rounds = rounds
        self.cost = cost

    def __repr__(self) -> str:
        return f"AsyncToolRun(rounds={self.rounds}, calls={len(self.calls)}, text={self.reply.text!r})"


class AsyncClient(_AsyncClient):
    """The asyncio client: ``chat``, ``stream`` and ``ask`` are coroutines
    that run on Nexus's own threads and never block the event loop."""

    async def chat(
        self,
        model: str,
        prompt: Prompt,
        *,
        system: Optional[str] = None,
        max_tokens: Optional[int] = None,
        temperature: Optional[float] = None,
        tools: Optional[Sequence[Mapping[str, Any]]] = None,
        schema: Optional[Mapping[str, Any]] = None,
    ) -> Reply:
        """One call to ``model``; ``prompt`` is a str or a conversation."""
        b = _bridge()
        reply: Reply = await b.wait(
            self._start_chat(
                b.native, model, prompt, system, max_tokens, temperature, tools, schema
            )
        )
        return reply

    async def run_tools(
        self,
        model: str,
        prompt: Prompt,
        *,
        tools: Sequence[Mapping[str, Any]],
        handlers: Mapping[str, Callable[[Any], Any]],
        max_rounds: int = 8,
        system: Optional[str] = None,
        max_tokens: Optional[int] = None,
        temperature: Optional[float] = None,
        schema: Optional[Mapping[str, Any]] = None,
    ) -> "AsyncToolRun":
        """The tool loop of ``Client.run_tools``; handlers may be coroutines."""
        messages: List[Dict[str, Any]] = (
            [{"role": "user", "content": [{"type": "text", "text": prompt}]}]
            if isinstance(prompt, str)
            else [dict(m) for m in prompt]
        )
        calls: List[Tuple[str, str, str]] = []
        cost: Optional[float] = 0.0
        for rounds in range(1, max_rounds + 2):
            reply = await self.chat(
                model,
                messages,
                system=system,
                max_tokens=max_tokens,
                temperature=temperature,
                tools=tools,
                schema=schema,
            )
            cost = None if cost is None or reply.cost is None else cost + reply.cost
            messages.append(reply.assistant_message())
            if not reply.tool_calls:
                return AsyncToolRun(reply, messages, calls, rounds, cost)
            if rounds > max_rounds:
                raise NoAcceptableAnswer(
                    f"the model still called tools after {max_rounds} round(s); "
                    "raise the limit or check the tools' answers",
                    code="no_acceptable_answer",
                )
            results: List[Dict[str, Any]] = []
            for call_id, name, args in reply.tool_calls:
                calls.append((call_id, name, args))
                try:
                    handler = handlers[name]
                    out = handler(json.loads(args))
                    if inspect.isawaitable(out):
                        out = await out
                    text = out if isinstance(out, str) else json.dumps(out)
                    results.append(_result_part(call_id, text, False))
                except Exception as e:  # the model hears about it, as the sync loop does
                    results.append(_result_part(call_id, f"the tool raised {e!r}", True))
            messages.append({"role": "user", "content": results})
        raise AssertionError("unreachable")

    async def stream(
        self,
        model: str,
        prompt: Prompt,
        *,
        system: Optional[str] = None,
        max_tokens: Optional[int] = None,
        temperature: Optional[float] = None,
        tools: Optional[Sequence[Mapping[str, Any]]] = None,
        schema: Optional[Mapping[str, Any]] = None,
    ) -> AsyncChatStream:
        """Starts a stream: ``async for ev in await client.stream(...)``."""
        b = _bridge()
        native: "NativeAsyncStream" = await b.wait(
            self._start_stream(
                b.native, model, prompt, system, max_tokens, temperature, tools, schema
            )
        )
        return AsyncChatStream(native)

    async def ask(
        self,
        prompt: str,
        *,
        category: Optional[str] = None,
        system: Optional[str] = None,
        validate: Optional[Sequence[str]] = None,
        test_cmd: Optional[str] = None,
        scheduled: bool = False,
        read_only: bool = False,
    ) -> AskReply:
        """A request through the model hierarchy, with escalation."""
        b = _bridge()
        answer: AskReply = await b.wait(
            self._start_ask(
                b.native,
                prompt,
                category,
                system,
                list(validate) if validate is not None else None,
                test_cmd,
                scheduled,
                read_only,
            )
        )
        return answer
