"""Plain-data shapes Nexus returns as dicts (``hierarchy()``, ``stats()``),
and the prompt type."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, TypedDict, Union

__all__ = ["Prompt", "TierInfo", "Hierarchy", "CategoryStats", "TierStats", "Stats"]

Prompt = Union[str, Sequence[Mapping[str, Any]]]
"""A prompt string, or a conversation of ``{"role", "content"}`` dicts."""


class TierInfo(TypedDict):
    model: str
    max_tokens: Optional[int]
    max_cost: Optional[float]


class Hierarchy(TypedDict):
    preset: str
    saved: bool
    categories: Dict[str, List[TierInfo]]


class CategoryStats(TypedDict):
    category: str
    requests: int
    escalated: int
    escalation_rate: float
    failed: int


class TierStats(TypedDict):
    tier: int
    attempts: int
    successes: int
    success_rate: float


class Stats(TypedDict):
    categories: List[CategoryStats]
    tiers: List[TierStats]
