"""An MCP server that writes garbage on stdout instead of JSON-RPC (a test
fixture)."""

import sys

sys.stdin.readline()
for i in range(50):
    sys.stdout.write(f"garbage line {i} <<not json>>\n")
sys.stdout.flush()
sys.stdin.read()
