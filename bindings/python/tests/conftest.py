"""Fixtures: a `nexus-standin` process speaking every provider's wire
format on loopback, and a fresh NEXUS_HOME per test."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "testing" / "python"))

from nexus_standin import StandIn  # noqa: E402

__all__ = ["StandIn"]


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
