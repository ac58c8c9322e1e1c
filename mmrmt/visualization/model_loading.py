"""The models the pictures look at: a config's model (random or trained) and the RMT inside it."""

import os
from typing import Dict, Optional, Tuple

import torch
from torch import Tensor, nn

from ..checkpoint import extract_state_dict, read_checkpoint
from ..models import RMT
from ..utils import UserError, build_model, check_checkpoint_file, load_config


def find_rmt(model: nn.Module, source: str) -> RMT:
    """Return the RMT backbone inside ``model``.

    Args:
        model (nn.Module): A detector, a segmentor or an RMT.
        source (str): Where the model comes from (a config path), for the error message.

    Returns:
        RMT: The first RMT among ``model``'s modules.

    Raises:
        UserError: ``model`` holds no RMT.
    """
    for module in model.modules():
        if isinstance(module, RMT):
            return module
    raise UserError(
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
            config's pretrained backbone if it names one) and the rest PyTorch's defaults.
        cfg_options (dict | None): Parsed ``--cfg-options``.

    Returns:
        tuple: (the model, its RMT backbone).

    Raises:
        UserError: missing config or checkpoint, no RMT in the model, or a checkpoint whose
            weights do not fit it.
    """
    check_checkpoint_file(checkpoint, "checkpoint", "Pass a checkpoint written by tools/train.py")
    cfg = load_config(config, cfg_options)
    # Random weights are seeded, so that the same figures come out every time; the global RNG
    # is left as it was.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_model(cfg)
        backbone = find_rmt(model, config)
        if checkpoint is None:
            # The backbone alone: the model's init_weights() logs every parameter to the console.
            backbone.init_weights()
    if checkpoint is not None:
        state_dict = extract_state_dict(read_checkpoint(checkpoint), checkpoint)
        check_weights_fit(model, state_dict, f"checkpoint {checkpoint} does not fit {config}")
        model.load_state_dict(state_dict)
    model.eval()
    return model, backbone


def check_weights_fit(model: nn.Module, state_dict: Dict[str, Tensor], problem: str) -> None:
    """Raise a one-line :class:`UserError` unless ``state_dict`` holds exactly ``model``'s weights.

    Args:
        model (nn.Module): The model.
        state_dict (dict[str, Tensor]): The weights to load.
        problem (str): Start of the message, e.g. which file does not fit which config.

    Raises:
        UserError: weights missing, unexpected or of another shape, counted with an example.
    """
    own = model.state_dict()
    mismatches = {
        "missing": [name for name in own if name not in state_dict],
        "of another shape": [
            f"{name}: {tuple(state_dict[name].shape)} in the file, {tuple(value.shape)} here"
            for name, value in own.items()
            if name in state_dict and state_dict[name].shape != value.shape
        ],
        "unexpected": [name for name in state_dict if name not in own],
    }
    found = [
        f"{len(names)} {kind} (e.g. {names[0]})" for kind, names in mismatches.items() if names
    ]
    if found:
        raise UserError(f"{problem}: weights " + ", ".join(found))


def weights_label(checkpoint: Optional[str]) -> str:
    """How figure titles name the weights: the checkpoint's file name, or random weights."""
    if checkpoint is None:
        return "random weights (no checkpoint)"
    return f"trained: {os.path.basename(checkpoint)}"


def trained_name(config: str, checkpoint: str) -> str:
    """How figures name a trained model: ``'RMT, trained: CONFIG_STEM / CHECKPOINT_FILE'``."""
    config_stem = os.path.splitext(os.path.basename(config))[0]
    return f"RMT, trained: {config_stem} / {os.path.basename(checkpoint)}"
