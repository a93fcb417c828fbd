"""A Nexus extension in Python: counts words, keeps a running total in its
store. Copy this directory, change the id, and go:

    nexus ext install --allow-unsigned examples/extensions/word-count
    nexus ext call word-count count '{"text": "one two three"}'

One JSON-RPC 2.0 message per line on stdin and stdout; see docs/EXTENSIONS.md.
"""

import json
import sys

_next = 0
_queued = []


def send(msg):
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


def read():
    line = sys.stdin.readline()
    if not line:
        sys.exit(0)
    return json.loads(line)


def host(method, params):
    """Calls the host and waits for the answer."""
    global _next
    _next += 1
    send({"jsonrpc": "2.0", "id": _next, "method": method, "params": params})
    while True:
        msg = read()
        if "method" in msg:
            _queued.append(msg)  # the host called us meanwhile: later
        elif msg.get("id") == _next:
            if "error" in msg:
                raise RuntimeError(msg["error"]["message"])
            return msg.get("result")


def count(params):
    words = len(params["text"].split())
    total = int(host("nexus/store.get", {"key": "total"}) or 0) + words
    host("nexus/store.put", {"key": "total", "value": str(total)})
    return {"words": words, "total": total}


METHODS = {
    "initialize": lambda p: {"name": "word-count"},
    "shutdown": lambda p: None,
    "count": count,
}

while True:
    msg = _queued.pop(0) if _queued else read()
    if "method" not in msg or "id" not in msg:
        continue
    try:
        result = METHODS[msg["method"]](msg.get("params") or {})
        send({"jsonrpc": "2.0", "id": msg["id"], "result": result})
    except KeyError:
        send({"jsonrpc": "2.0", "id": msg["id"], "error": {"code": -32601, "message": "no such method"}})
    except Exception as e:  # noqa: BLE001
        send({"jsonrpc": "2.0", "id": msg["id"], "error": {"code": -32603, "message": str(e)}})
