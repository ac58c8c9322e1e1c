"""Checkpoint reading, conversion of the authors' layouts, and safe unpickling."""

from .convert import convert_authors_backbone, extract_state_dict, strip_prefix
from .detection import convert_detection_checkpoint, identify_arch
from .loading import CheckpointError, load_backbone_checkpoint, read_checkpoint
from .safe_globals import register_safe_globals, safe_checkpoint_globals

__all__ = [
    "CheckpointError",
    "convert_authors_backbone",
    "convert_detection_checkpoint",
    "extract_state_dict",
    "identify_arch",
    "load_backbone_checkpoint",
    "read_checkpoint",
    "register_safe_globals",
    "safe_checkpoint_globals",
    "strip_prefix",
]
