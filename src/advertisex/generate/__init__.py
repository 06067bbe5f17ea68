"""Realistic synthetic ad traffic with injected faults and its exact truth."""

from advertisex.generate._run import generate

__all__ = ["generate"]
