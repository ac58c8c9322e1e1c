"""Checkpoint reading, conversion of the authors' layouts, and safe unpickling.

Which converter to call: :func:`convert_authors_checkpoint` for a whole released file (what
``tools/convert_ckpt.py`` writes out), :func:`convert_backbone_state_dict` for one backbone's
weights already in memory (what loading into an ``RMT`` does).

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
    convert_backbone_state_dict,
    extract_state_dict,
    has_backbone_prefix,
    strip_prefix,
)
from .errors import CheckpointError
from .loading import WeightsDiff, diff_weights, load_backbone_checkpoint, read_checkpoint
from .safe_globals import register_safe_globals, safe_checkpoint_globals

__all__ = [
    "BACKBONE_PREFIX",
    "CheckpointError",
    "WeightsDiff",
    "convert_authors_checkpoint",
    "convert_backbone_state_dict",
    "convert_detection_checkpoint",
    "convert_imagenet_checkpoint",
    "diff_weights",
    "extract_state_dict",
    "has_backbone_prefix",
    "identify_arch",
    "load_backbone_checkpoint",
    "read_checkpoint",
    "register_safe_globals",
    "safe_checkpoint_globals",
    "strip_prefix",
]
