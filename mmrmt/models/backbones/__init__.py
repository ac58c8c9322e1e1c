"""Backbones provided by mmrmt."""

from .rmt import ARCH_SETTINGS, RMT, resolve_arch

__all__ = ["ARCH_SETTINGS", "RMT", "resolve_arch"]
