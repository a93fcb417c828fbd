"""A `nexus-standin` process for the Python test suites (the pyo3 binding
and the uniffi facade): every provider's wire format on loopback, with
scripting of the next responses through its control endpoint."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from typing import Any, Dict

from nexus_binaries import binary


def _standin_binary() -> str:
    return binary(
        "nexus-standin",
        "NEXUS_STANDIN",
        "cargo build -p nexus-testkit --bin nexus-standin",
    )


class StandIn:
    """A running stand-in: base URLs, the env that points clients at it,
    and scripting of the next responses."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [_standin_binary()], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        self.info: Dict[str, Any] = json.loads(self.proc.stdout.readline())
        self.env: Dict[str, str] = dict(self.info["env"])
        self.addr: str = self.info["addr"]

    def script(self, api: str, *scripts: Dict[str, Any]) -> None:
        body = json.dumps({"api": api, "scripts": list(scripts)}).encode()
        req = urllib.request.Request(
            f"http://{self.addr}/_standin/script", data=body, method="POST"
        )
        with urllib.request.urlopen(req) as r:
            assert r.status == 200

    def request_count(self) -> int:
        with urllib.request.urlopen(f"http://{self.addr}/_standin/requests") as r:
            count: int = json.loads(r.read())["count"]
            return count

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=10)
