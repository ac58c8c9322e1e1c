"""Backbones provided by mmrmt."""

from .rmt import ARCH_SETTINGS, RMT, resolve_arch, set_attention_impl

__all__ = ["ARCH_SETTINGS", "RMT", "resolve_arch", "set_attention_impl"]
