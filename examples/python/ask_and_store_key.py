"""Store a key in the vault, then ask through the model hierarchy.

    pip install ./bindings/python
    OPENAI_API_KEY=sk-... python examples/python/ask_and_store_key.py "Summarise RFC 9110 in one line"

With no key in the environment it uses the one already in the vault.
"""

from __future__ import annotations

import os
import sys

import nexus


def main() -> int:
    prompt = " ".join(sys.argv[1:]) or "Write a haiku about type systems"
    client = nexus.Client()
    key = os.environ.pop("OPENAI_API_KEY", None)
    if key:
        client.vault.set_key("openai", key)  # kept encrypted; never in config.toml
        client = nexus.Client()  # picks the key up from the vault
    try:
        answer = client.ask(prompt)
    except nexus.BudgetExceeded as e:
        print(f"over budget: {e}", file=sys.stderr)
        return 21
    except nexus.NoAcceptableAnswer as e:
        for a in e.attempts:
            print(f"tier {a.tier} {a.model}: {a.outcome} {a.reason or ''}", file=sys.stderr)
        print(f"no answer: {e} (cause: {e.__cause__!r})", file=sys.stderr)
        return 22
    except nexus.NexusError as e:
        print(f"{e.code}: {e}", file=sys.stderr)
        return 1
    for a in answer.attempts:
        print(f"[{answer.category}] tier {a.tier} {a.model}: {a.outcome}", file=sys.stderr)
    print(answer.text)
    print(f"${answer.total_cost:.6f} across {len(answer.attempts)} attempt(s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
