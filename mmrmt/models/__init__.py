"""mmrmt models; ``RMT`` is registered in mmengine's root ``MODELS`` registry on import."""

from .backbones import ARCH_SETTINGS, RMT, resolve_arch, set_attention_impl

__all__ = ["ARCH_SETTINGS", "RMT", "resolve_arch", "set_attention_impl"]
