"""Carrier adapters, one module per carrier; ``ADAPTERS`` maps carrier id → adapter."""

from __future__ import annotations

from services.carriers.adapters.base import Adapter, ParseError, ParseResult
from services.carriers.adapters.dhl import DhlAdapter

ADAPTERS: dict[str, Adapter] = {a.carrier: a for a in (DhlAdapter(),)}

__all__ = ["ADAPTERS", "Adapter", "ParseError", "ParseResult"]
