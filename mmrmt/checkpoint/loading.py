"""Load a checkpoint into an RMT backbone safely, with errors that name the file."""

import os
import pickle
import zipfile
from typing import Dict, List, Mapping, NamedTuple, Optional, Tuple

from mmengine.logging import MMLogger, print_log
from torch import Tensor, nn

from .convert import (
    BACKBONE_PREFIX,
    convert_backbone_state_dict,
    extract_state_dict,
    has_backbone_prefix,
    mismatched_decays,
    strip_prefix,
)
from .errors import CheckpointError

#: Below this fraction of the backbone's weights found in a checkpoint, loading is an error.
MIN_MATCHED_FRACTION = 0.5

MISSING_CHECKPOINT_HELP = (
    "Download the authors' ImageNet-1k RMT weights (README, 'Pretrained weights') to that path, "
    "or train from scratch with --cfg-options model.backbone.init_cfg=None"
)


class WeightsDiff(NamedTuple):
    """How a state dict differs from a model's.

    Attributes:
        missing (list[str]): The model's weights the state dict lacks, in the model's order.
        wrong_shapes (list[tuple]): ``(name, shape in the state dict, shape in the model)`` of
            the weights both hold with different shapes, in the state dict's order.
        unexpected (list[str]): The state dict's weights the model lacks, in its order.
    """

    missing: List[str]
    wrong_shapes: List[Tuple[str, Tuple[int, ...], Tuple[int, ...]]]
    unexpected: List[str]


def diff_weights(own: Mapping[str, Tensor], state_dict: Mapping[str, Tensor]) -> WeightsDiff:
    """Compare a model's ``state_dict()`` with weights to load into it.

    The one comparison behind both refusals: :func:`load_backbone_checkpoint` (wrong shapes
    of a backbone checkpoint) and :func:`mmrmt.utils.check_weights_fit` (a whole model's).

    Args:
        own (Mapping[str, Tensor]): The model's ``state_dict()``.
        state_dict (Mapping[str, Tensor]): The weights to load.

    Returns:
        WeightsDiff: Missing, wrongly shaped and unexpected names (all empty: they fit).
    """
    return WeightsDiff(
        missing=[name for name in own if name not in state_dict],
        wrong_shapes=[
            (name, tuple(value.shape), tuple(own[name].shape))
            for name, value in state_dict.items()
            if name in own and own[name].shape != value.shape
        ],
        unexpected=[name for name in state_dict if name not in own],
    )


def is_missing_local_file(path: str) -> bool:
    """Whether ``path`` is a local path (not a URL) with no file behind it."""
    return "://" not in path and not os.path.isfile(path)


def read_checkpoint(filename: str, map_location: str = "cpu") -> dict:
    """Read a checkpoint with ``weights_only`` unpickling and clear errors.

    Args:
        filename (str): Local path or URL (anything mmengine's ``CheckpointLoader`` reads).
        map_location (str): Where to put the tensors.

    Returns:
        dict: The loaded checkpoint.

    Raises:
        FileNotFoundError: a local file that does not exist.
        CheckpointError: a truncated or corrupt file, or one that pickles code or unknown types.
    """
    if is_missing_local_file(filename):
        raise FileNotFoundError(f"Checkpoint file not found: {filename}. {MISSING_CHECKPOINT_HELP}")
    # mmengine.runner imports the whole Runner; deferred to the first read so that
    # `import mmrmt` (which only registers) does not load it.
    from mmengine.runner import CheckpointLoader

    try:
        return CheckpointLoader.load_checkpoint(filename, map_location=map_location)
    except pickle.UnpicklingError as err:
        if "weights_only" in str(err) or "Unsupported global" in str(err):
            raise CheckpointError(
                f"Refusing checkpoint {filename}: it pickles objects outside the safe list "
                f"(possibly code). Only load checkpoints you trust the origin of. Details: {err}"
            ) from err
        raise CheckpointError(f"Checkpoint {filename} is corrupt or truncated: {err}") from err
    except (EOFError, zipfile.BadZipFile, RuntimeError, ValueError) as err:
        raise CheckpointError(f"Checkpoint {filename} is corrupt or truncated: {err}") from err


def load_backbone_checkpoint(
    model: nn.Module,
    filename: str,
    prefix: Optional[str] = None,
    map_location: str = "cpu",
    min_matched: float = MIN_MATCHED_FRACTION,
) -> Dict[str, list]:
    """Load an authors' or mmrmt checkpoint into an :class:`~mmrmt.models.RMT`.

    Handles ImageNet checkpoints (``{'model': ...}``, classification head dropped), detection
    and segmentation ones (``{'state_dict': ...}`` with ``prefix='backbone.'``, found
    automatically when no prefix is given) and this project's converted files.

    Args:
        model (nn.Module): The RMT backbone.
        filename (str): Checkpoint path or URL.
        prefix (str | None): Key prefix to select and strip, e.g. ``'backbone.'``.
        map_location (str): Device for the loaded tensors.
        min_matched (float): Smallest fraction of the model's weights the file must provide.

    Returns:
        dict: ``missing_keys`` and ``unexpected_keys`` of the load.

    Raises:
        CheckpointError: unreadable file, wrong arch (other decay rates or shapes), or a file
            that matches fewer than ``min_matched`` of the weights.
    """
    state_dict = extract_state_dict(read_checkpoint(filename, map_location), filename)
    if prefix is None and has_backbone_prefix(state_dict):
        prefix = BACKBONE_PREFIX
    state_dict, saved_decays = convert_backbone_state_dict(strip_prefix(state_dict, prefix))

    expected_decays = [stage.rel_pos.decay for stage in model.layers]
    bad_stages = mismatched_decays(saved_decays, expected_decays)
    if bad_stages:
        raise CheckpointError(
            f"Checkpoint {filename} was trained with other decay settings in stages {bad_stages} "
            "(num_heads / heads_range / initial value): it is for another RMT arch"
        )
    own = model.state_dict()
    diff = diff_weights(own, state_dict)
    wrong_shapes = [
        f"{name}: checkpoint {saved} vs model {expected}"
        for name, saved, expected in diff.wrong_shapes
    ]
    if wrong_shapes:
        raise CheckpointError(
            f"Checkpoint {filename} does not fit this RMT (another arch?): "
            + "; ".join(wrong_shapes[:5])
            + (f" and {len(wrong_shapes) - 5} more" if len(wrong_shapes) > 5 else "")
        )
    matched = len(own) - len(diff.missing)
    if matched < min_matched * len(own):
        raise CheckpointError(
            f"Checkpoint {filename} matches only {matched} of {len(own)} RMT backbone "
            f"weights (prefix={prefix!r}); it is not an RMT checkpoint of this layout"
        )
    result = model.load_state_dict(state_dict, strict=False)
    logger = MMLogger.get_current_instance()
    print_log(
        f"Loaded {matched}/{len(own)} RMT weights from {filename}; "
        f"missing: {result.missing_keys or 'none'}; unused: {result.unexpected_keys or 'none'}",
        logger=logger,
    )
    return dict(
        missing_keys=list(result.missing_keys), unexpected_keys=list(result.unexpected_keys)
    )
