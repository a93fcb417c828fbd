"""Type stubs of the native module. Kept in step with src/*.rs by the
parity test (tests/test_parity.py) and checked by mypy --strict in CI."""

from os import PathLike
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence, final

from typing_extensions import Self, disjoint_base

from .types import Hierarchy, Prompt, Stats



__version__: str
__all__ = [
    "AskReply",
    "AsyncClient",
    "Attempt",
    "ChatStream",
    "Client",
    "Completions",
    "NativeAsyncStream",
    "Preset",
    "Reply",
    "Route",
    "StreamEvent",
    "ToolRun",
    "Usage",
    "Vault",
    "Mesh",
    "MeshFollow",
    "__version__",
    "error_codes",
]

@final
class Usage:
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    @property
    def total_tokens(self) -> int: ...

@final
class Reply:
    text: str
    model: str
    provider: str
    usage: Usage
    cost: Optional[float]
    """Dollars, when the model's prices are known."""
    stop_reason: str
    request_id: Optional[str]
    reasoning: str
    tool_calls: list[tuple[str, str, str]]
    """``(id, name, arguments_json)`` of each tool call."""
    json_text: Optional[str]
    """The answer as JSON text, when ``schema=`` asked for JSON."""
    assistant_json: str
    @property
    def json(self) -> Any:
        """The answer parsed as JSON, when ``schema=`` asked for it."""
    def assistant_message(self) -> dict[str, Any]:
        """The answer as an assistant message (text and tool calls)."""

@final
class ToolRun:
    reply: Reply
    calls: list[tuple[str, str, str]]
    """``(id, name, arguments_json)`` of every tool call, in order."""
    rounds: int
    cost: Optional[float]
    messages_json: str
    @property
    def messages(self) -> list[dict[str, Any]]:
        """The whole conversation, to send back with a new user message."""

@final
class Attempt:
    tier: int
    model: str
    outcome: str
    """``success``, ``error``, ``refusal``, ``invalid_output`` or ``skipped``."""
    error_kind: Optional[str]
    reason: Optional[str]
    escalation: Optional[str]
    usage: Usage
    cost: float
    latency_ms: int

@final
class AskReply:
    text: str
    model: str
    provider: str
    usage: Usage
    cost: Optional[float]
    reply: Reply
    request_id: str
    category: str
    basis: str
    tier: int
    escalations: int
    total_cost: float
    attempts: list[Attempt]

@final
class Route:
    category: str
    basis: str
    tier: Optional[int]
    model: Optional[str]
    estimate: float

@final
class Preset:
    name: str
    description: str

@final
class StreamEvent:
    type: str
    """``start``, ``text``, ``reasoning``, ``tool_call``, ``usage`` or ``stop``."""
    text: Optional[str]
    model: Optional[str]
    index: Optional[int]
    id: Optional[str]
    name: Optional[str]
    arguments: Optional[str]
    usage: Optional[Usage]
    stop_reason: Optional[str]

@final
class Vault:
    @property
    def backend(self) -> str: ...
    def get(self, name: str) -> Optional[str]: ...
    def set(self, name: str, value: str) -> None: ...
    def delete(self, name: str) -> bool: ...
    def list(self, prefix: str = "") -> list[str]: ...
    def set_key(self, provider: str, key: str) -> None: ...

@final
class Mesh:
    def identity(self) -> tuple[str, str]: ...
    def current(self) -> str: ...
    def daemon_running(self) -> bool: ...
    def create(self, name: str, broker: str, *, as_name: Optional[str] = None) -> None: ...
    def join(
        self, link: str, *, broker: Optional[str] = None, as_name: Optional[str] = None
    ) -> str: ...
    def has_key(self, *, mesh: Optional[str] = None) -> bool: ...
    def invite(
        self,
        *,
        mesh: Optional[str] = None,
        expires_secs: int = 86400,
        uses: int = 1,
        role: str = "member",
    ) -> dict[str, Any]: ...
    def peers(self, *, mesh: Optional[str] = None) -> list[dict[str, Any]]: ...
    def send(self, to: str, text: str, *, mesh: Optional[str] = None) -> str: ...
    def publish(self, topic: str, text: str, *, mesh: Optional[str] = None) -> str: ...
    def history(
        self,
        topic: str,
        *,
        mesh: Optional[str] = None,
        before: Optional[int] = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]: ...
    def inbox(self, *, mesh: Optional[str] = None) -> list[dict[str, Any]]: ...
    def mark_read(self, seqs: Sequence[int], *, mesh: Optional[str] = None) -> None: ...
    def unread(self, *, mesh: Optional[str] = None) -> dict[str, int]: ...
    def set_status(self, text: str, *, mesh: Optional[str] = None) -> None: ...
    def set_summary(self, text: str, *, mesh: Optional[str] = None) -> None: ...
    def grant(self, who: str, caps: Sequence[str], *, mesh: Optional[str] = None) -> None: ...
    def revoke(self, who: str, caps: Sequence[str], *, mesh: Optional[str] = None) -> None: ...
    def block(self, who: str, *, mesh: Optional[str] = None) -> int: ...
    def approve(self, who: str, *, mesh: Optional[str] = None) -> str: ...
    def pending(self, *, mesh: Optional[str] = None) -> list[dict[str, Any]]: ...
    def request_key(self, *, mesh: Optional[str] = None) -> int: ...
    def verify(self, who: str, *, mesh: Optional[str] = None) -> tuple[dict[str, Any], str]: ...
    def topics(self, *, mesh: Optional[str] = None) -> list[str]: ...
    def join_topic(self, topic: str, *, mesh: Optional[str] = None) -> None: ...
    def leave_topic(self, topic: str, *, mesh: Optional[str] = None) -> None: ...
    def backup(self, path: str | PathLike[str], passphrase: str) -> None: ...
    def restore(
        self, backup: bytes, passphrase: str, *, force: bool = False
    ) -> tuple[str, str]: ...
    def follow(self, *, mesh: Optional[str] = None) -> MeshFollow: ...

@final
class MeshFollow(Iterator[dict[str, Any]]):
    def __iter__(self) -> MeshFollow: ...
    def __next__(self) -> dict[str, Any]: ...
    def commit(self) -> None: ...
    @property
    def through_daemon(self) -> bool: ...

@final
class ChatStream(Iterator[StreamEvent]):
    def __iter__(self) -> ChatStream: ...
    def __next__(self) -> StreamEvent: ...
    @property
    def reply(self) -> Optional[Reply]: ...
    def collect(self) -> Reply: ...

@final
class Completions:
    def __new__(cls, wake_fd: int) -> Self: ...
    def take(self) -> list[tuple[int, bool, Any]]: ...

@final
class NativeAsyncStream:
    def _start_next_batch(self, completions: Completions) -> int: ...
    def reply(self) -> Optional[Reply]: ...

class _Common:
    @property
    def home(self) -> Path: ...
    @property
    def vault(self) -> Vault: ...
    @property
    def mesh(self) -> Mesh: ...
    def mesh_routed(self, route: str) -> Mesh: ...
    def route(self, prompt: str, category: Optional[str] = None) -> Route: ...
    def classify(self, prompt: str) -> tuple[str, str]: ...
    def presets(self) -> list[Preset]: ...
    def hierarchy(self) -> Hierarchy: ...
    def use_preset(self, name: str) -> Hierarchy: ...
    def set_tiers(self, category: str, edits: Sequence[str]) -> Hierarchy: ...
    def stats(self, days: int = 1) -> Stats: ...
    def spent_today(self) -> float: ...

@final
class Client(_Common):
    def __new__(
        cls,
        home: Optional[str | PathLike[str]] = None,
        env: Optional[Mapping[str, str]] = None,
        vault: Optional[Any] = None,
    ) -> Self: ...
    def chat(
        self,
        model: str,
        prompt: Prompt,
        *,
        system: Optional[str] = None,
        max_tokens: Optional[int] = None,
        temperature: Optional[float] = None,
        tools: Optional[Sequence[Mapping[str, Any]]] = None,
        schema: Optional[Mapping[str, Any]] = None,
    ) -> Reply: ...
    def run_tools(
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
    ) -> ToolRun: ...
    def stream(
        self,
        model: str,
        prompt: Prompt,
        *,
        system: Optional[str] = None,
        max_tokens: Optional[int] = None,
        temperature: Optional[float] = None,
        tools: Optional[Sequence[Mapping[str, Any]]] = None,
        schema: Optional[Mapping[str, Any]] = None,
    ) -> ChatStream: ...
    def ask(
        self,
        prompt: str,
        *,
        category: Optional[str] = None,
        system: Optional[str] = None,
        validate: Optional[Sequence[str]] = None,
        test_cmd: Optional[str] = None,
        scheduled: bool = False,
        read_only: bool = False,
    ) -> AskReply: ...

@disjoint_base
class AsyncClient(_Common):
    def __new__(
        cls,
        home: Optional[str | PathLike[str]] = None,
        env: Optional[Mapping[str, str]] = None,
        vault: Optional[Any] = None,
    ) -> Self: ...
    def _start_chat(
        self,
        completions: Completions,
        model: str,
        prompt: Prompt,
        system: Optional[str] = None,
        max_tokens: Optional[int] = None,
        temperature: Optional[float] = None,
        tools: Optional[Sequence[Mapping[str, Any]]] = None,
        schema: Optional[Mapping[str, Any]] = None,
    ) -> int: ...
    def _start_stream(
        self,
        completions: Completions,
        model: str,
        prompt: Prompt,
        system: Optional[str] = None,
        max_tokens: Optional[int] = None,
        temperature: Optional[float] = None,
        tools: Optional[Sequence[Mapping[str, Any]]] = None,
        schema: Optional[Mapping[str, Any]] = None,
    ) -> int: ...
    def _start_ask(
        self,
        completions: Completions,
        prompt: str,
        category: Optional[str] = None,
        system: Optional[str] = None,
        validate: Optional[Sequence[str]] = None,
        test_cmd: Optional[str] = None,
        scheduled: bool = False,
        read_only: bool = False,
    ) -> int: ...

def error_codes() -> list[str]: ...
