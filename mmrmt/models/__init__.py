"""mmrmt models, registered into the mmdet and mmseg registries on import."""

from .backbones import ARCH_SETTINGS, RMT, resolve_arch

__all__ = ["ARCH_SETTINGS", "RMT", "resolve_arch"]
