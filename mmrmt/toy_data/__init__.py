"""Small, deterministic datasets in the real COCO and ADE20K formats, for tests and demos."""

from .ade import make_toy_ade
from .coco import make_toy_coco
from .coco_panoptic import make_toy_coco_panoptic

__all__ = ["make_toy_ade", "make_toy_coco", "make_toy_coco_panoptic"]
