"""Where the test suites find Nexus's binaries: an environment variable
naming one, else the workspace's target directory (debug, then release)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def binary(name: str, env: str, build: str) -> str:
    """The path of binary `name`; `env` overrides it; `build` says how to
    build it when it is missing."""
    explicit = os.environ.get(env)
    if explicit:
        return explicit
    for profile in ("debug", "release"):
        p = ROOT / "target" / profile / name
        if p.exists():
            return str(p)
    raise RuntimeError(f"{name} is not built; run `{build}` or set {env}")
