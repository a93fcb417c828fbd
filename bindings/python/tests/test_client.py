"""The Python binding end to end against the provider stand-ins."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Dict, List, Optional

import pytest

import nexus
from conftest import StandIn


class DictVault:
    """A host-language vault: a dict, with a call log."""

    backend = "dict"

    def __init__(self) -> None:
        self.data: Dict[str, str] = {}
        self.calls: List[str] = []

    def get(self, name: str) -> Optional[str]:
        self.calls.append(f"get {name}")
        return self.data.get(name)

    def set(self, name: str, value: str) -> None:
        self.calls.append(f"set {name}")
        self.data[name] = value

    def delete(self, name: str) -> bool:
        self.calls.append(f"delete {name}")
        return self.data.pop(name, None) is not None

    def list(self, prefix: str) -> List[str]:
        return sorted(k for k in self.data if k.startswith(prefix))


def client(standin: StandIn, home: Path) -> nexus.Client:
    return nexus.Client(home=home, env=standin.env, vault=DictVault())


def test_chat_returns_text_usage_model_and_cost(standin: StandIn, home: Path) -> None:
    c = client(standin, home)
    r = c.chat("openai/gpt-4o-mini", "hello from python")
    assert r.text == "echo: hello from python"
    assert str(r) == r.text
    assert r.model == "gpt-4o-mini"
    assert r.provider == "openai"
    assert r.usage.input_tokens > 0 and r.usage.output_tokens > 0
    assert r.usage.total_tokens >= r.usage.input_tokens + r.usage.output_tokens
    assert r.cost is not None and r.cost > 0
    assert r.stop_reason == "end_turn"


def test_chat_takes_a_conversation(standin: StandIn, home: Path) -> None:
    c = client(standin, home)
    r = c.chat(
        "anthropic/claude-haiku-4-5",
        [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "one"},
            {"role": "assistant", "content": "two"},
            {"role": "user", "content": "three"},
        ],
        max_tokens=50,
    )
    assert r.text == "echo: three"
    with pytest.raises(TypeError):
        c.chat("openai/gpt-4o-mini", 42)  # type: ignore[arg-type]
    with pytest.raises(nexus.InvalidRequestError):
        c.chat("openai/gpt-4o-mini", [{"role": "robot", "content": "x"}])


@pytest.mark.parametrize(
    "model", ["anthropic/claude-haiku-4-5", "openai/gpt-4o-mini", "gemini/gemini-2.5-flash"]
)
def test_stream_iterates_events_then_holds_the_reply(
    standin: StandIn, home: Path, model: str
) -> None:
    c = client(standin, home)
    s = c.stream(model, "stream this to me")
    assert s.reply is None
    kinds = []
    text = ""
    for ev in s:
        kinds.append(ev.type)
        if ev.type == "text":
            assert ev.text is not None
            text += ev.text
    assert text == "echo: stream this to me"
    assert "stop" in kinds
    assert s.reply is not None and s.reply.text == text
    assert s.reply.cost is not None


def test_an_error_mid_stream_raises_a_typed_error(standin: StandIn, home: Path) -> None:
    c = client(standin, home)
    standin.script("openai", {"mid_stream_error": 2})
    s = c.stream("openai/gpt-4o-mini", "a b c d e f")
    got = []
    with pytest.raises(nexus.NexusError) as info:
        for ev in s:
            got.append(ev)
    assert got, "events before the error are delivered"
    assert info.value.provider == "openai"
    assert s.reply is None


def test_rate_limit_error_has_retry_after(standin: StandIn, home: Path) -> None:
    c = client(standin, home)
    standin.script("openai", {"status": 429, "headers": {"retry-after": "7"}})
    with pytest.raises(nexus.RateLimitError) as info:
        c.chat("openai/gpt-4o-mini", "hi")
    e = info.value
    assert isinstance(e, nexus.NexusError)
    assert e.code == "rate_limited"
    assert e.retry_after == 7.0
    assert e.status == 429
    assert e.provider == "openai"


def test_error_classes(standin: StandIn, home: Path) -> None:
    c = client(standin, home)
    standin.script("anthropic", {"status": 401})
    with pytest.raises(nexus.AuthError) as auth:
        c.chat("anthropic/claude-haiku-4-5", "hi")
    assert "sk-standin-test" not in str(auth.value)
    standin.script("openai", {"insufficient_quota": True})
    with pytest.raises(nexus.QuotaExceededError):
        c.chat("openai/gpt-4o-mini", "hi")
    standin.script("openai", {"status": 503})
    with pytest.raises(nexus.ProviderError):
        c.chat("openai/gpt-4o-mini", "hi")
    with pytest.raises(nexus.ConfigError):
        c.chat("nosuch/model", "hi")
    with pytest.raises(nexus.ConfigError):
        c.ask("x", category="astrology")


def test_ask_escalates_and_reports_attempts(standin: StandIn, home: Path) -> None:
    c = client(standin, home)
    h = c.set_tiers(
        "coding", ["tier1=anthropic/claude-haiku-4-5", "tier2=gpt-4o-mini", "tier3=disabled"]
    )
    assert h["preset"] == "custom"
    assert [t["model"] for t in h["categories"]["coding"]] == [
        "anthropic/claude-haiku-4-5",
        "openai/gpt-4o-mini",
    ]
    route = c.route("write a parser", category="coding")
    assert route.tier == 1 and route.model == "anthropic/claude-haiku-4-5"
    assert c.classify("[review] please look") == ("review", "tag")

    standin.script("anthropic", {"status": 500})
    a = c.ask("write a parser", category="coding")
    assert a.text == "echo: write a parser"
    assert a.tier == 2 and a.escalations == 1
    assert [x.outcome for x in a.attempts] == ["error", "success"]
    assert a.attempts[0].error_kind == "server"
    assert a.total_cost > 0

    # Every tier fails: NoAcceptableAnswer, with the attempts, caused by the
    # last provider error.
    standin.script("anthropic", {"status": 500})
    standin.script("openai", {"status": 429, "headers": {"retry-after": "3"}})
    with pytest.raises(nexus.NoAcceptableAnswer) as info:
        c.ask("write a parser", category="coding")
    e = info.value
    assert len(e.attempts) == 2
    assert isinstance(e.__cause__, nexus.RateLimitError)
    assert e.__cause__.retry_after == 3.0

    stats = c.stats()
    assert stats["categories"][0]["category"] == "coding"
    assert stats["categories"][0]["requests"] == 2
    assert c.spent_today() > 0


def test_budget_exceeded_sends_nothing(standin: StandIn, home: Path) -> None:
    (home / "config.toml").write_text("[http]\nmax_retries = 0\n[policy]\ndaily_budget = 0.0\n")
    c = client(standin, home)
    c.set_tiers("coding", ["tier1=gpt-4o-mini"])
    before = standin.request_count()
    with pytest.raises(nexus.BudgetExceeded):
        c.ask("write a parser", category="coding")
    assert standin.request_count() == before


def test_presets(standin: StandIn, home: Path) -> None:
    c = client(standin, home)
    names = [p.name for p in c.presets()]
    assert {"budget", "balanced", "premium", "speed", "claude-only"} <= set(names)
    h = c.use_preset("budget")
    assert h["preset"] == "budget" and h["saved"]
    assert nexus.Client(home=home, env=standin.env).hierarchy()["preset"] == "budget"
    with pytest.raises(nexus.ConfigError):
        c.use_preset("nope")


def test_python_vault_round_trip_and_keys_from_it(standin: StandIn, home: Path) -> None:
    vault = DictVault()
    env = {k: v for k, v in standin.env.items() if not k.endswith("_API_KEY")}
    c = nexus.Client(home=home, env=env, vault=vault)
    v = c.vault
    assert v.backend == "dict"
    v.set("app/token", "t0k3n")
    assert vault.data["app/token"] == "t0k3n"
    assert v.get("app/token") == "t0k3n"
    assert v.get("app/missing") is None
    v.set_key("openai", "sk-standin-test")
    assert v.list("provider/") == ["provider/openai/api_key"]
    assert v.delete("app/token") and not v.delete("app/token")
    with pytest.raises(nexus.ConfigError):
        v.set("no-namespace", "x")
    # Rust asked the Python vault for the key, and used it.
    r = c.chat("openai/gpt-4o-mini", "keyed by python")
    assert r.text == "echo: keyed by python"
    assert "get provider/openai/api_key" in vault.calls


def test_an_exception_in_a_python_vault_is_the_cause(home: Path) -> None:
    class Broken(DictVault):
        def get(self, name: str) -> Optional[str]:
            raise KeyError("the keychain is locked")

    c = nexus.Client(home=home, vault=Broken())
    with pytest.raises(nexus.VaultError) as info:
        c.vault.get("app/x")
    assert isinstance(info.value.__cause__, KeyError)
    # The same when a chat needs a key the vault would hold: a VaultError
    # with the exception as its cause, not an AuthError without one.
    keyless = nexus.Client(
        home=home,
        env={"OPENAI_API_KEY": "", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"},
        vault=Broken(),
    )
    with pytest.raises(nexus.VaultError) as info:
        keyless.chat("openai/gpt-4o-mini", "hi")
    assert isinstance(info.value.__cause__, KeyError), repr(info.value.__cause__)
    with pytest.raises(TypeError):
        nexus.Client(home=home, vault=object())


def test_the_configured_encrypted_file_vault(home: Path) -> None:
    # No vault given: the configured one (the encrypted file, unlocked by
    # the passphrase in the environment).
    c = nexus.Client(
        home=home, env={"NEXUS_VAULT_BACKEND": "file", "NEXUS_VAULT_PASSPHRASE": "correct horse"}
    )
    c.vault.set("app/k", "v")
    again = nexus.Client(
        home=home, env={"NEXUS_VAULT_BACKEND": "file", "NEXUS_VAULT_PASSPHRASE": "correct horse"}
    )
    assert again.vault.backend.startswith("file")
    assert again.vault.get("app/k") == "v"


async def test_async_client(standin: StandIn, home: Path) -> None:
    c = nexus.AsyncClient(home=home, env=standin.env, vault=DictVault())
    r = await c.chat("openai/gpt-4o-mini", "async hello")
    assert r.text == "echo: async hello"
    s = await c.stream("anthropic/claude-haiku-4-5", "async stream")
    text = "".join([ev.text or "" async for ev in s if ev.type == "text"])
    assert text == "echo: async stream"
    assert s.reply is not None and s.reply.text == text
    standin.script("openai", {"status": 429, "headers": {"retry-after": "2"}})
    with pytest.raises(nexus.RateLimitError):
        await c.chat("openai/gpt-4o-mini", "x")
    c.set_tiers("daily", ["tier1=gpt-4o-mini", "tier2=disabled", "tier3=disabled"])
    a = await c.ask("what's the weather like", category="daily")
    assert a.tier == 1


async def test_async_calls_never_block_the_loop(standin: StandIn, home: Path) -> None:
    """A slow stream runs while the loop keeps ticking."""
    c = nexus.AsyncClient(home=home, env=standin.env, vault=DictVault())
    standin.script("openai", {"drip_ms": 40})
    ticks = 0
    done = False

    async def ticker() -> None:
        nonlocal ticks
        while not done:
            ticks += 1
            await asyncio.sleep(0.005)

    t = asyncio.create_task(ticker())
    start = time.monotonic()
    r = await c.chat("openai/gpt-4o-mini", "slow one two three")  # not streamed: one drip
    s = await c.stream("openai/gpt-4o-mini", "slow one two three")
    async for _ in s:
        pass
    elapsed = time.monotonic() - start
    done = True
    await t
    assert r.text.startswith("echo:")
    # The loop ticked throughout (every 5 ms) while the drip took its time.
    assert ticks >= int(elapsed / 0.005 * 0.5), (ticks, elapsed)


def test_sync_calls_release_the_gil(standin: StandIn, home: Path) -> None:
    """Another Python thread runs while a call waits on the network."""
    import threading

    c = client(standin, home)
    standin.script("openai", {"drip_ms": 30})
    counter = 0
    stop = threading.Event()

    def spin() -> None:
        nonlocal counter
        while not stop.is_set():
            counter += 1

    t = threading.Thread(target=spin)
    t.start()
    s = c.stream("openai/gpt-4o-mini", "one two three four")
    s.collect()
    stop.set()
    t.join()
    assert counter > 1000


def test_exiting_right_after_an_async_call_never_crashes(standin: StandIn, home: Path) -> None:
    """Nexus's threads never take the GIL, so an interpreter that exits the
    moment a call finishes cannot catch one mid-call (that crashed CPython
    with `PyGILState_Release` in about one run in twenty)."""
    import json
    import subprocess
    import sys

    script = (
        "import asyncio, json, sys, nexus\n"
        "env = json.loads(sys.argv[1])\n"
        "async def main():\n"
        "    c = nexus.AsyncClient(home=sys.argv[2], env=env)\n"
        "    await c.chat('openai/gpt-4o-mini', 'bye')\n"
        "    async for _ in await c.stream('openai/gpt-4o-mini', 'bye now'):\n"
        "        pass\n"
        "asyncio.run(main())\n"
    )
    for _ in range(25):
        r = subprocess.run(
            [sys.executable, "-c", script, json.dumps(standin.env), str(home)],
            capture_output=True,
            timeout=60,
        )
        assert r.returncode == 0, r.stderr.decode()


async def test_a_cancelled_call_is_dropped_quietly(standin: StandIn, home: Path) -> None:
    c = nexus.AsyncClient(home=home, env=standin.env, vault=DictVault())
    standin.script("anthropic", {"hang": True})
    task = asyncio.ensure_future(c.chat("anthropic/claude-haiku-4-5", "never answered"))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The loop and the client keep working.
    r = await c.chat("openai/gpt-4o-mini", "after")
    assert r.text == "echo: after"
