"""The uniffi facade, through uniffi's generated Python bindings: the same
code Swift and Kotlin call. `NEXUS_FFI_BINDINGS` is the directory holding
the generated `nexus_ffi.py` and the library (scripts/test sets it up)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT / "testing" / "python"))
sys.path.insert(0, os.environ.get("NEXUS_FFI_BINDINGS", str(ROOT / "target" / "ffi" / "python")))

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
    (h / "config.toml").write_text("[http]\nmax_retries = 0\n")
    return h
