"""An MCP server that reads `initialize` and never answers, ignores SIGTERM
and the end of its stdin (a test fixture)."""

import signal
import sys
import time

signal.signal(signal.SIGTERM, signal.SIG_IGN)
sys.stdin.readline()
while True:
    time.sleep(1)
