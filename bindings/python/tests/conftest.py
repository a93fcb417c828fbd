"""Fixtures: a `nexus-standin` process speaking every provider's wire
format on loopback, and a fresh NEXUS_HOME per test."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest

ROOT = Path(__file__).resolve().parents[3]


def _standin_binary() -> str:
    explicit = os.environ.get("NEXUS_STANDIN")
    if explicit:
        return explicit
    for profile in ("debug", "release"):
        p = ROOT / "target" / profile / "nexus-standin"
        if p.exists():
            return str(p)
    raise RuntimeError(
        "nexus-standin is not built; run `cargo build -p nexus-testkit --bin nexus-standin` "
        "or set NEXUS_STANDIN"
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


@pytest.fixture(scope="session")
def standin() -> Iterator[StandIn]:
    s = StandIn()
    yield s
    s.close()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "nexus"
    h.mkdir()
    # One try per call, so scripted failures map one-to-one to requests.
    (h / "config.toml").write_text("[http]\nmax_retries = 0\n")
    return h
