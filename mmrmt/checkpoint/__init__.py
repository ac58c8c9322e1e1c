"""Checkpoint reading, conversion of the authors' layouts, and safe unpickling.

Imports run one way: :mod:`.loading` (used by the model's ``init_weights``) reads files and uses
:mod:`.convert` (key mapping) and :mod:`.authors` (whole released files); none of them imports
:mod:`mmrmt.models`. What they need to know about an arch comes from :mod:`mmrmt.arch_zoo`.
"""

from .authors import (
    convert_authors_checkpoint,
    convert_detection_checkpoint,
    convert_imagenet_checkpoint,
    identify_arch,
)
from .convert import (
    BACKBONE_PREFIX,
    convert_authors_backbone,
    extract_state_dict,
    has_backbone_prefix,
    strip_prefix,
)
from .errors import CheckpointError
from .loading import load_backbone_checkpoint, read_checkpoint
from .safe_globals import register_safe_globals, safe_checkpoint_globals

__all__ = [
    "BACKBONE_PREFIX",
    "CheckpointError",
    "convert_authors_backbone",
    "convert_authors_checkpoint",
    "convert_detection_checkpoint",
    "convert_imagenet_checkpoint",
    "extract_state_dict",
    "has_backbone_prefix",
    "identify_arch",
    "load_backbone_checkpoint",
    "read_checkpoint",
    "register_safe_globals",
    "safe_checkpoint_globals",
    "strip_prefix",
]
