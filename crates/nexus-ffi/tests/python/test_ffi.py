"""The Swift/Kotlin facade end to end, through uniffi's generated Python."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Dict, List, Optional

import pytest

import nexus_ffi as ffi
from conftest import StandIn


class KeychainLike(ffi.HostVault):
    """A host-language vault, as a Swift Keychain vault would be."""

    def __init__(self) -> None:
        self.data: Dict[str, str] = {}
        self.calls: List[str] = []

    def get(self, name: str) -> Optional[str]:
        self.calls.append(f"get {name}")
        return self.data.get(name)

    def set(self, name: str, value: str) -> None:
        self.data[name] = value

    def delete(self, name: str) -> bool:
        return self.data.pop(name, None) is not None

    def list(self, prefix: str) -> List[str]:
        return [k for k in self.data if k.startswith(prefix)]


def client(standin: StandIn, home: Path, vault: Optional[ffi.HostVault] = None) -> ffi.Client:
    return ffi.Client(ffi.ClientOptions(home=str(home), env=standin.env), vault or KeychainLike())


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_chat_and_a_conversation(standin: StandIn, home: Path) -> None:
    c = client(standin, home)
    r = run(c.chat("openai/gpt-4o-mini", "hello from the ffi", ffi.ChatOptions()))
    assert r.text == "echo: hello from the ffi"
    assert r.provider == "openai" and r.model == "gpt-4o-mini"
    assert r.usage.output_tokens > 0 and r.cost is not None and r.cost > 0
    msgs = [ffi.Message(role="system", content="brief"), ffi.Message(role="user", content="two")]
    r = run(c.chat_messages("anthropic/claude-haiku-4-5", msgs, ffi.ChatOptions(max_tokens=20)))
    assert r.text == "echo: two"


def test_stream(standin: StandIn, home: Path) -> None:
    c = client(standin, home)

    async def go() -> str:
        s = await c.stream("gemini/gemini-2.5-flash", "stream via ffi", ffi.ChatOptions())
        text = ""
        while (ev := await s.next()) is not None:
            if ev.kind == "text":
                text += ev.text or ""
        reply = s.reply()
        assert reply is not None and reply.text == text
        return text

    assert run(go()) == "echo: stream via ffi"


def test_errors_are_one_enum(standin: StandIn, home: Path) -> None:
    c = client(standin, home)
    standin.script("openai", {"status": 429, "headers": {"retry-after": "7"}})
    with pytest.raises(ffi.NexusError.RateLimited) as info:
        run(c.chat("openai/gpt-4o-mini", "hi", ffi.ChatOptions()))
    assert info.value.retry_after_secs == 7.0
    assert isinstance(info.value, ffi.NexusError)
    standin.script("anthropic", {"status": 401})
    with pytest.raises(ffi.NexusError.Auth):
        run(c.chat("anthropic/claude-haiku-4-5", "hi", ffi.ChatOptions()))
    with pytest.raises(ffi.NexusError.Config):
        c.route("x", "astrology")


def test_ask_escalates(standin: StandIn, home: Path) -> None:
    c = client(standin, home)
    h = c.set_tiers("coding", ["tier1=anthropic/claude-haiku-4-5", "tier2=gpt-4o-mini", "tier3=disabled"])
    assert h.preset == "custom" and len(h.categories["coding"]) == 2
    assert c.route("write a parser", "coding").tier == 1
    assert c.classify("[review] x").basis == "tag"
    standin.script("anthropic", {"status": 500})
    a = run(c.ask("write a parser", ffi.AskOptions(category="coding")))
    assert a.tier == 2 and a.escalations == 1
    assert [x.outcome for x in a.attempts] == ["error", "success"]
    standin.script("anthropic", {"status": 500})
    standin.script("openai", {"status": 500})
    with pytest.raises(ffi.NexusError.NoAcceptableAnswer) as info:
        run(c.ask("write a parser", ffi.AskOptions(category="coding")))
    assert len(info.value.attempts) == 2
    assert c.stats(1).categories[0].requests == 2
    assert c.spent_today() > 0
    assert "balanced" in [p.name for p in c.presets()]
    assert c.use_preset("budget").preset == "budget"


def test_host_vault_from_the_foreign_side(standin: StandIn, home: Path) -> None:
    vault = KeychainLike()
    env = {k: v for k, v in standin.env.items() if not k.endswith("_API_KEY")}
    c = ffi.Client(ffi.ClientOptions(home=str(home), env=env), vault)
    v = c.vault()
    assert v.backend() == "host"
    v.set_key("openai", "sk-standin-test")
    v.set("app/token", "t")
    assert vault.data["provider/openai/api_key"] == "sk-standin-test"
    assert v.get("app/token") == "t"
    assert v.list("") == ["app/token", "provider/openai/api_key"]
    assert v.delete("app/token") and v.get("app/token") is None
    with pytest.raises(ffi.NexusError.Config):
        v.set("bad", "x")
    r = run(c.chat("openai/gpt-4o-mini", "keyed by the host", ffi.ChatOptions()))
    assert r.text == "echo: keyed by the host"
    assert "get provider/openai/api_key" in vault.calls


def test_a_failing_host_vault_is_a_vault_error(home: Path) -> None:
    class Locked(KeychainLike):
        def get(self, name: str) -> Optional[str]:
            raise ffi.NexusError.Vault("the keychain is locked")

    c = ffi.Client(ffi.ClientOptions(home=str(home), env={}), Locked())
    with pytest.raises(ffi.NexusError.Vault) as info:
        c.vault().get("app/x")
    assert "the keychain is locked" in str(info.value)
    assert ffi.version()
