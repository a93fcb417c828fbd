"""Tools and structured output through the Swift/Kotlin facade (uniffi's
generated Python), against the stand-ins for Anthropic, OpenAI and Gemini."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import List, Tuple

import nexus_ffi as ffi
from conftest import StandIn
from test_ffi import client

MODELS = ["anthropic/claude-sonnet-4-5", "openai/gpt-4o-mini", "gemini/gemini-2.5-flash"]
WEATHER = ffi.ToolSpec(
    name="get_weather",
    description="The weather in a city",
    input_schema_json=json.dumps(
        {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    ),
)
PROMPT = 'tool get_weather {"city":"Paris"}'


class Weather(ffi.ToolHandler):
    """A tool handler, as a Swift or Kotlin class would be."""

    def __init__(self) -> None:
        self.calls: List[Tuple[str, str]] = []

    def call(self, name: str, arguments_json: str) -> ffi.ToolOutput:
        self.calls.append((name, arguments_json))
        city = json.loads(arguments_json)["city"]
        if city == "Atlantis":
            return ffi.ToolOutput(content="no such city", is_error=True)
        return ffi.ToolOutput(content=f"22C in {city}", is_error=False)


def test_run_tools_on_every_dialect(standin: StandIn, home: Path) -> None:
    c = client(standin, home)
    h = Weather()
    for model in MODELS:
        run = asyncio.run(c.run_tools(model, PROMPT, ffi.ChatOptions(tools=[WEATHER]), h, 4))
        assert run.reply.text == "the tool said: 22C in Paris", model
        assert run.rounds == 2 and run.calls[0].name == "get_weather"
        roles = [m["role"] for m in json.loads(run.messages_json)]
        assert roles == ["user", "assistant", "user", "assistant"]
    assert len(h.calls) == 3


def test_a_conversation_with_tool_results_and_structured_output(
    standin: StandIn, home: Path
) -> None:
    c = client(standin, home)
    r = asyncio.run(c.chat(MODELS[1], PROMPT, ffi.ChatOptions(tools=[WEATHER])))
    assert r.stop_reason == "tool_use"
    call = r.tool_calls[0]
    convo = [
        {"role": "user", "content": PROMPT},
        json.loads(r.assistant_message_json),
        {"role": "user", "content": [{"type": "tool_result", "call_id": call.id, "content": "hail"}]},
    ]
    r = asyncio.run(
        c.chat_conversation(MODELS[1], json.dumps(convo), ffi.ChatOptions(tools=[WEATHER]))
    )
    assert r.text == "the tool said: hail"
    schema = json.dumps({"type": "object", "required": ["echo"]})
    r = asyncio.run(c.chat(MODELS[2], "shape it", ffi.ChatOptions(schema_json=schema)))
    assert r.json is not None and json.loads(r.json) == {"echo": "shape it"}
    try:
        asyncio.run(c.chat(MODELS[0], "shape it", ffi.ChatOptions(schema_json=schema)))
        raise AssertionError("plain text passed a schema")
    except ffi.NexusError.NoAcceptableAnswer as e:
        assert "not in the requested format" in str(e)
