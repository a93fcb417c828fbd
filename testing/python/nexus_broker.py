"""A `nexus-broker` process on loopback for the Python test suites (the
pyo3 binding and the uniffi facade): a real mesh broker with its own
SQLite database."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _broker_binary() -> str:
    explicit = os.environ.get("NEXUS_BROKER")
    if explicit:
        return explicit
    for profile in ("debug", "release"):
        p = ROOT / "target" / profile / "nexus-broker"
        if p.exists():
            return str(p)
    raise RuntimeError(
        "nexus-broker is not built; run `cargo build -p nexus-broker` or set NEXUS_BROKER"
    )


class Broker:
    """A running broker: its ``url`` (``ws://127.0.0.1:PORT``)."""

    def __init__(self, workdir: Path) -> None:
        self.proc = subprocess.Popen(
            [
                _broker_binary(),
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--db",
                str(workdir / "broker.db"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        urls = [w for w in line.split() if w.startswith("ws://")]
        if not urls:
            self.close()
            raise RuntimeError(f"nexus-broker did not start: {line!r}")
        self.url: str = urls[0]

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
