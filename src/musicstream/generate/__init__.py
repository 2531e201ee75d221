"""Deterministic, streaming generator of sample data shaped like the real public Sparkify sample."""

from musicstream.generate.core import GenerateStats, generate

__all__ = ["GenerateStats", "generate"]
