"""Small, deterministic datasets in the real COCO and ADE20K formats, for tests and demos."""

from .ade import make_toy_ade
from .coco import make_toy_coco

__all__ = ["make_toy_ade", "make_toy_coco"]
