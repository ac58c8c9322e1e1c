"""Convert the authors' released files: ImageNet backbones and whole mmdet 2.x detectors.

ImageNet files (``{'model': ...}``) become backbone checkpoints (``{'state_dict', 'meta'}``) for
``init_cfg=dict(type='Pretrained', checkpoint=...)``: the classifier and the ``Relpos`` buffers
go, after the decay rates are checked against the arch the shapes match.

The authors release Mask R-CNN, RetinaNet and Cascade Mask R-CNN weights trained with mmdet 2.x:
``{'meta': {..., 'CLASSES': ...}, 'state_dict': ..., 'optimizer': ...}``. Checked module by
module, mmdet 3.x kept every neck and head parameter name of these detectors:

* FPN: ``neck.lateral_convs.i.conv``, ``neck.fpn_convs.i.conv``;
* RPNHead: ``rpn_head.rpn_conv``, ``rpn_cls``, ``rpn_reg``;
* Shared2FCBBoxHead / ConvFCBBoxHead: ``shared_convs.i.{conv,bn}``, ``shared_fcs.i``, ``fc_cls``,
  ``fc_reg`` (81 classes with background last in both versions);
* FCNMaskHead: ``convs.i.conv``, ``upsample``, ``conv_logits``;
* RetinaHead: ``cls_convs.i.conv``, ``reg_convs.i.conv``, ``retina_cls``, ``retina_reg``;
* CascadeRoIHead: one ``bbox_head.s`` / ``mask_head.s`` per stage.

So only the backbone needs converting: its ``Relpos`` buffers are derived from the arch here and
are dropped once their decay rates are checked against the arch the weights belong to. The
class names move from ``meta['CLASSES']`` to mmengine's ``meta['dataset_meta']['classes']``, and
the optimizer state is left behind.
"""

import re
from typing import Dict, List, Mapping, Optional, Tuple

from torch import Tensor

from ..arch_zoo import ARCH_SETTINGS, PRESET_NAMES, arch_decay_rates
from .convert import (
    BACKBONE_PREFIX,
    convert_backbone_state_dict,
    extract_state_dict,
    has_backbone_prefix,
    mismatched_decays,
    strip_prefix,
)
from .errors import CheckpointError

_BLOCK_KEY = re.compile(r"^layers\.(\d+)\.blocks\.(\d+)\.")


def backbone_layout(state_dict: Mapping[str, Tensor]) -> Tuple[List[int], List[int]]:
    """Read the depths and widths of an RMT backbone state dict (authors' key names).

    Args:
        state_dict (Mapping): Backbone weights without the ``backbone.`` prefix.

    Returns:
        tuple: (blocks per stage, channels per stage); empty lists without RMT blocks.
    """
    depths: Dict[int, int] = {}
    for name in state_dict:
        match = _BLOCK_KEY.match(name)
        if match:
            stage, block = int(match.group(1)), int(match.group(2))
            depths[stage] = max(depths.get(stage, 0), block + 1)
    stages = sorted(depths)
    # Another backbone with ``layers.i.blocks.j`` keys (Swin) has no q_proj: width 0.
    q_weights = [
        state_dict.get(f"layers.{stage}.blocks.0.retention.q_proj.weight") for stage in stages
    ]
    widths = [0 if weight is None else int(weight.shape[0]) for weight in q_weights]
    return [depths[stage] for stage in stages], widths


def identify_arch(state_dict: Mapping[str, Tensor]) -> Optional[str]:
    """Return the preset (``'t'``, ``'s'``, ``'b'``, ``'l'``) whose depths and widths match.

    Args:
        state_dict (Mapping): Backbone weights without the ``backbone.`` prefix.

    Returns:
        str | None: The preset name, or None for another layout.
    """
    depths, widths = backbone_layout(state_dict)
    for name in PRESET_NAMES:
        preset = ARCH_SETTINGS[name]
        if depths == list(preset["depths"]) and widths == list(preset["embed_dims"]):
            return name
    return None


def check_backbone_decays(
    state_dict: Mapping[str, Tensor], decays: Mapping[int, Tensor], source: str
) -> Optional[str]:
    """Identify the backbone's preset and check the saved decay rates against it.

    Args:
        state_dict (Mapping): Converted backbone weights (no prefix).
        decays (Mapping): Saved ``Relpos.decay`` buffers by stage.
        source (str): The file, for messages.

    Returns:
        str | None: The preset, or None when the layout is not a preset (nothing checked).

    Raises:
        CheckpointError: the decay rates differ from those of the preset the shapes match.
    """
    arch = identify_arch(state_dict)
    if arch is not None:
        bad_stages = mismatched_decays(decays, arch_decay_rates(arch))
        if bad_stages:
            raise CheckpointError(
                f"{source}: shapes match RMT-{arch.upper()} but the decay rates of stages "
                f"{bad_stages} do not (other num_heads / heads_range); not a preset checkpoint"
            )
    return arch


def convert_detector_state_dict(
    state_dict: Mapping[str, Tensor], source: str = "checkpoint"
) -> Tuple[Dict[str, Tensor], Optional[str]]:
    """Map an authors' mmdet 2.x detector state dict onto the mmdet 3.x model's keys.

    Args:
        state_dict (Mapping): ``checkpoint['state_dict']`` (``module.`` already stripped).
        source (str): The file, for messages.

    Returns:
        tuple: (state dict for the mmdet 3.x detector, backbone preset name or None).

    Raises:
        CheckpointError: no ``backbone.`` weights, or decay rates of another arch.
    """
    backbone = strip_prefix(state_dict, BACKBONE_PREFIX)
    if not backbone:
        raise CheckpointError(f"{source}: no 'backbone.' weights, not a detector checkpoint")
    backbone, decays = convert_backbone_state_dict(backbone)
    arch = check_backbone_decays(backbone, decays, source)
    converted = {BACKBONE_PREFIX + name: value for name, value in backbone.items()}
    converted.update(
        (name, value) for name, value in state_dict.items() if not name.startswith(BACKBONE_PREFIX)
    )
    return converted, arch


def convert_detector_meta(meta: Optional[Mapping]) -> dict:
    """Keep what mmdet 3.x reads from an mmdet 2.x ``meta``: the class names.

    Args:
        meta (Mapping | None): The old checkpoint's ``meta``.

    Returns:
        dict: ``{'dataset_meta': {'classes': ...}}`` when the old meta had ``CLASSES``, else {}.
    """
    classes = (meta or {}).get("CLASSES")
    return {"dataset_meta": {"classes": tuple(classes)}} if classes else {}


def convert_detection_checkpoint(checkpoint: Mapping, source: str = "checkpoint") -> dict:
    """Convert a whole authors' detection checkpoint to an mmengine one for mmdet 3.x.

    Args:
        checkpoint (Mapping): What ``torch.load`` returned for the authors' file.
        source (str): The file, for messages.

    Returns:
        dict: ``{'state_dict': ..., 'meta': {...}}``; ``meta['rmt_arch']`` holds the backbone
        preset (None for a non-preset layout) and ``meta['converted_from']`` the source.
    """
    state_dict, arch = convert_detector_state_dict(extract_state_dict(checkpoint, source), source)
    meta = convert_detector_meta(checkpoint.get("meta"))
    meta.update(rmt_arch=arch, converted_from=source)
    return {"state_dict": state_dict, "meta": meta}


def convert_imagenet_checkpoint(checkpoint: Mapping, source: str = "checkpoint") -> dict:
    """Convert an authors' ImageNet checkpoint to an mmengine backbone checkpoint.

    Args:
        checkpoint (Mapping): What ``torch.load`` returned for the authors' file.
        source (str): The file, for messages.

    Returns:
        dict: ``{'state_dict': ..., 'meta': {'rmt_arch': ..., 'converted_from': ...}}``.

    Raises:
        CheckpointError: decay rates of another arch than the shapes match.
    """
    state_dict, decays = convert_backbone_state_dict(extract_state_dict(checkpoint, source))
    arch = check_backbone_decays(state_dict, decays, source)
    return {"state_dict": state_dict, "meta": {"rmt_arch": arch, "converted_from": source}}


def convert_authors_checkpoint(checkpoint: Mapping, source: str = "checkpoint") -> dict:
    """Convert either kind of authors' file, told apart by its ``backbone.`` keys.

    The entry point for a whole released file (``tools/convert_ckpt.py``); one backbone's
    weights in memory go through :func:`~mmrmt.checkpoint.convert.convert_backbone_state_dict`.

    Args:
        checkpoint (Mapping): What ``torch.load`` returned for the authors' file.
        source (str): The file, for messages.

    Returns:
        dict: See :func:`convert_detection_checkpoint` and :func:`convert_imagenet_checkpoint`;
        ``meta['kind']`` is ``'detector'`` or ``'backbone'``.
    """
    if has_backbone_prefix(extract_state_dict(checkpoint, source)):
        converted = convert_detection_checkpoint(checkpoint, source)
        converted["meta"]["kind"] = "detector"
    else:
        converted = convert_imagenet_checkpoint(checkpoint, source)
        converted["meta"]["kind"] = "backbone"
    return converted
