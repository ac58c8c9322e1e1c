"""Map the authors' checkpoint keys onto this project's RMT, in one place.

The authors' backbone keys are kept as they are (``patch_embed.proj.N``,
``layers.i.blocks.j.retention.q_proj``, ``layers.i.downsample.reduction``, ``extra_norms.i``).
What differs:

* ``layers.i.Relpos.decay`` / ``.angle``: buffers there, derived from the arch here. They are
  dropped after :func:`check_decay_rates` has compared them with the model's.
* ImageNet checkpoints carry a classification head (``proj``, ``norm``, ``head`` at the top
  level, plus ``swish`` / ``avgpool`` in some versions) that a dense-prediction backbone drops.
"""

import re
from typing import Dict, List, Mapping, Optional, Tuple

import torch
from torch import Tensor

CLASSIFIER_PREFIXES = ("proj.", "norm.", "head.", "swish.", "avgpool.")
#: Where detectors and segmentors keep their backbone's weights.
BACKBONE_PREFIX = "backbone."
_RELPOS_KEY = re.compile(r"^layers\.(\d+)\.Relpos\.(decay|angle)$")


def extract_state_dict(checkpoint: Mapping, source: str = "checkpoint") -> Dict[str, Tensor]:
    """Return the state dict inside a loaded checkpoint.

    Args:
        checkpoint (Mapping): What ``torch.load`` returned.
        source (str): Name used in error messages (the file).

    Returns:
        dict: parameter name -> tensor, without a DDP ``module.`` prefix.
    """
    if not isinstance(checkpoint, Mapping):
        raise TypeError(f"{source}: expected a dict checkpoint, got {type(checkpoint).__name__}")
    for key in ("state_dict", "model", "module"):
        if isinstance(checkpoint.get(key), Mapping):
            checkpoint = checkpoint[key]
            break
    return {
        (name[len("module.") :] if name.startswith("module.") else name): value
        for name, value in checkpoint.items()
        if isinstance(value, Tensor)
    }


def has_backbone_prefix(state_dict: Mapping[str, Tensor]) -> bool:
    """Whether the weights are a whole detector's or segmentor's (``backbone.`` keys)."""
    return any(name.startswith(BACKBONE_PREFIX) for name in state_dict)


def strip_prefix(state_dict: Mapping[str, Tensor], prefix: Optional[str]) -> Dict[str, Tensor]:
    """Keep the keys under ``prefix`` (e.g. ``'backbone.'``) without it; None keeps all."""
    if not prefix:
        return dict(state_dict)
    return {
        name[len(prefix) :]: value for name, value in state_dict.items() if name.startswith(prefix)
    }


def split_decay_buffers(
    state_dict: Mapping[str, Tensor],
) -> Tuple[Dict[str, Tensor], Dict[int, Tensor]]:
    """Separate the authors' ``Relpos`` buffers from the weights.

    Returns:
        tuple: (weights without the buffers, {stage index: saved log-decay rates}).
    """
    weights, decays = {}, {}
    for name, value in state_dict.items():
        match = _RELPOS_KEY.match(name)
        if match is None:
            weights[name] = value
        elif match.group(2) == "decay":
            decays[int(match.group(1))] = value
    return weights, decays


def drop_classifier(state_dict: Mapping[str, Tensor]) -> Dict[str, Tensor]:
    """Drop the ImageNet classification head of the authors' checkpoints."""
    return {
        name: value
        for name, value in state_dict.items()
        if not name.startswith(CLASSIFIER_PREFIXES)
    }


def convert_backbone_state_dict(
    state_dict: Mapping[str, Tensor],
) -> Tuple[Dict[str, Tensor], Dict[int, Tensor]]:
    """Convert one backbone's weights (ImageNet or ``backbone.``-stripped detection) in memory.

    The key-level step that loading into an RMT and both whole-file converters share; to convert
    a released file, call :func:`mmrmt.checkpoint.authors.convert_authors_checkpoint`.

    Args:
        state_dict (Mapping[str, Tensor]): The authors' backbone keys, no prefix.

    Returns:
        tuple: (state dict for :class:`mmrmt.models.RMT`, {stage: saved log-decay rates}).
    """
    weights, decays = split_decay_buffers(state_dict)
    return drop_classifier(weights), decays


def mismatched_decays(
    saved: Mapping[int, Tensor], expected: List[Tensor], atol: float = 1e-5
) -> List[int]:
    """Return the stages whose saved decay rates differ from the model's (another arch)."""
    return [
        stage
        for stage, rates in saved.items()
        if stage >= len(expected)
        or rates.shape != expected[stage].shape
        or not torch.allclose(rates.float().cpu(), expected[stage].float().cpu(), atol=atol)
    ]
