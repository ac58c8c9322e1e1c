"""The models the figures look at and how their titles name them.

A config's model (random or trained, loaded by :func:`mmrmt.utils.load_model`) with the RMT
inside it, and the labels of its weights.
"""

import os
from typing import Optional, Tuple

from torch import nn

from ..errors import InvalidValueError
from ..models import RMT
from ..utils import load_model


def find_rmt(model: nn.Module, source: str) -> RMT:
    """Return the RMT backbone inside ``model``.

    Args:
        model (nn.Module): A detector, a segmentor or an RMT.
        source (str): Where the model comes from (a config path), for the error message.

    Returns:
        RMT: The first RMT among ``model``'s modules.

    Raises:
        InvalidValueError: ``model`` holds no RMT.
    """
    for module in model.modules():
        if isinstance(module, RMT):
            return module
    raise InvalidValueError(
        f"{source} builds a {type(model).__name__} without an RMT backbone; pass an RMT config "
        "such as configs/det/maskrcnn_rmt_t_toy.py"
    )


def rmt_from_config(
    config: str, checkpoint: Optional[str] = None, cfg_options: Optional[dict] = None
) -> Tuple[nn.Module, RMT]:
    """Build a config's model in eval mode, with a checkpoint's weights or random ones.

    Args:
        config (str): Config file of a model with an RMT backbone.
        checkpoint (str | None): Checkpoint of the whole model (``tools/train.py``'s); None
            gives the backbone its own initialisation (``init_weights()``, which loads the
            config's pretrained backbone if it names one) and the rest seeded PyTorch defaults.
        cfg_options (dict | None): Parsed ``--cfg-options``.

    Returns:
        tuple: (the model, its RMT backbone).

    Raises:
        FileNotFoundError: a missing config or checkpoint.
        InvalidValueError: no RMT in the model.
        CheckpointError: a checkpoint that cannot be read or whose weights do not fit.
    """

    def init_backbone(model: nn.Module) -> None:
        # The backbone alone: the model's init_weights() logs every parameter to the console.
        # Found first, so that a model without an RMT is refused before any init_cfg runs.
        find_rmt(model, config).init_weights()

    model = load_model(config, checkpoint, cfg_options, initialise=init_backbone)
    return model, find_rmt(model, config)


def weights_label(checkpoint: Optional[str]) -> str:
    """How figure titles name the weights: the checkpoint's file name, or random weights."""
    if checkpoint is None:
        return "random weights (no checkpoint)"
    return f"trained: {os.path.basename(checkpoint)}"


def trained_name(config: str, checkpoint: str) -> str:
    """How figures name a trained model: ``'RMT, trained: CONFIG_STEM / CHECKPOINT_FILE'``."""
    config_stem = os.path.splitext(os.path.basename(config))[0]
    return f"RMT, trained: {config_stem} / {os.path.basename(checkpoint)}"
