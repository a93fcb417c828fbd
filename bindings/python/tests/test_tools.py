"""Tool calling and structured output through the Python binding, against
the stand-ins for Anthropic, OpenAI and Gemini."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Dict, List

import pytest

import nexus

from conftest import StandIn
from test_client import DictVault

MODELS = ["anthropic/claude-sonnet-4-5", "openai/gpt-4o-mini", "gemini/gemini-2.5-flash"]

WEATHER: Dict[str, Any] = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}

PROMPT = 'tool get_weather {"city":"Paris"}'


def client(standin: StandIn, home: Path) -> nexus.Client:
    return nexus.Client(home=home, env=standin.env, vault=DictVault())


def test_run_tools_on_every_dialect(standin: StandIn, home: Path) -> None:
    c = client(standin, home)
    seen: List[Any] = []

    def weather(args: Dict[str, Any]) -> str:
        seen.append(args)
        return f"22C in {args['city']}"

    for model in MODELS:
        run = c.run_tools(model, PROMPT, tools=[WEATHER], handlers={"get_weather": weather})
        assert run.reply.text == "the tool said: 22C in Paris", model
        assert run.rounds == 2 and len(run.calls) == 1
        assert run.calls[0][1] == "get_weather"
        assert [m["role"] for m in run.messages] == ["user", "assistant", "user", "assistant"]
    assert seen == [{"city": "Paris"}] * 3


def test_a_hand_written_loop_and_a_raising_tool(standin: StandIn, home: Path) -> None:
    c = client(standin, home)
    reply = c.chat(MODELS[1], PROMPT, tools=[WEATHER])
    assert reply.stop_reason == "tool_use"
    call_id, name, args = reply.tool_calls[0]
    assert name == "get_weather" and json.loads(args) == {"city": "Paris"}
    convo = [
        {"role": "user", "content": PROMPT},
        reply.assistant_message(),
        nexus.tool_result(call_id, "sunny"),
    ]
    assert c.chat(MODELS[1], convo, tools=[WEATHER]).text == "the tool said: sunny"

    def broken(args: Dict[str, Any]) -> str:
        raise RuntimeError("the weather service is down")

    run = c.run_tools(MODELS[0], PROMPT, tools=[WEATHER], handlers={"get_weather": broken})
    assert "the weather service is down" in run.reply.text


def test_streamed_tool_calls(standin: StandIn, home: Path) -> None:
    c = client(standin, home)
    for model in MODELS:
        s = c.stream(model, PROMPT, tools=[WEATHER])
        kinds = [ev.type for ev in s]
        assert "tool_call" in kinds, (model, kinds)
        assert s.reply is not None and s.reply.tool_calls[0][1] == "get_weather"


def test_structured_output(standin: StandIn, home: Path) -> None:
    c = client(standin, home)
    schema = {"type": "object", "properties": {"echo": {"type": "string"}}, "required": ["echo"]}
    for model in MODELS[1:]:
        r = c.chat(model, "shape it", schema=schema)
        assert r.json == {"echo": "shape it"}, model
    with pytest.raises(nexus.NoAcceptableAnswer) as info:
        c.chat(MODELS[0], "shape it", schema=schema)
    assert "not in the requested format" in str(info.value)


def test_the_async_tool_loop_awaits_coroutine_handlers(standin: StandIn, home: Path) -> None:
    async def main() -> nexus.AsyncToolRun:
        c = nexus.AsyncClient(home=home, env=standin.env, vault=DictVault())

        async def weather(args: Dict[str, Any]) -> str:
            await asyncio.sleep(0)
            return f"mild in {args['city']}"

        return await c.run_tools(
            MODELS[2], PROMPT, tools=[WEATHER], handlers={"get_weather": weather}
        )

    run = asyncio.run(main())
    assert run.reply.text == "the tool said: mild in Paris"
    assert run.rounds == 2
