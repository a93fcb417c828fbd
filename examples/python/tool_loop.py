"""A tool loop: the model may call ``get_weather``; this program runs it and
sends the result back until the model answers.

    pip install ./bindings/python
    ANTHROPIC_API_KEY=sk-... python examples/python/tool_loop.py anthropic/claude-haiku-4-5 \
        "Should I take an umbrella in Paris today?"
"""

from __future__ import annotations

import sys
from typing import Any, Dict

import nexus

WEATHER = {
    "name": "get_weather",
    "description": "Today's weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def get_weather(args: Dict[str, Any]) -> str:
    # A real program would call a weather service here.
    return f"22C and sunny in {args['city']}"


def main() -> int:
    model = sys.argv[1] if len(sys.argv) > 1 else ""
    prompt = " ".join(sys.argv[2:]) or "Should I take an umbrella in Paris today?"
    try:
        run = nexus.Client().run_tools(
            model, prompt, tools=[WEATHER], handlers={"get_weather": get_weather}
        )
    except nexus.NexusError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for _id, name, args in run.calls:
        print(f"called {name}({args})", file=sys.stderr)
    print(run.reply.text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
