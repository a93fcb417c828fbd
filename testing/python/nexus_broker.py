"""A `nexus-broker` process on loopback for the Python test suites (the
pyo3 binding and the uniffi facade): a real mesh broker with its own
SQLite database."""

from __future__ import annotations

import subprocess
from pathlib import Path

from nexus_binaries import binary


def _broker_binary() -> str:
    return binary("nexus-broker", "NEXUS_BROKER", "cargo build -p nexus-broker")


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
