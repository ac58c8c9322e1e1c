"""A config's model with a checkpoint's weights, or seeded random ones, ready for inference.

The one place tools that look at or export a model (``tools/vis_*.py``, ``tools/export_onnx.py``)
build it from a config and load ``tools/train.py``'s checkpoint into it. Training and testing
load through mmengine's Runner instead.
"""

from typing import Callable, Dict, Optional

import torch
from torch import Tensor, nn

from ..checkpoint import extract_state_dict, read_checkpoint
from .config import build_model, load_config
from .data_files import check_checkpoint_file
from .errors import UserError

#: What to pass when a whole model's checkpoint is missing.
TRAINED_CHECKPOINT_HELP = "Pass a checkpoint written by tools/train.py"


def load_model(
    config: str,
    checkpoint: Optional[str] = None,
    cfg_options: Optional[dict] = None,
    initialise: Optional[Callable[[nn.Module], None]] = None,
) -> nn.Module:
    """Build a config's model in eval mode, with a checkpoint's weights or seeded random ones.

    Random weights come from seed 0, so the same config gives the same model every time; the
    global random state is left as it was.

    Args:
        config (str): An mmdet or mmseg config.
        checkpoint (str | None): The whole model's checkpoint (``tools/train.py``'s), which must
            hold exactly the model's weights. None keeps random weights.
        cfg_options (dict | None): Parsed ``--cfg-options``.
        initialise (callable | None): Without a checkpoint, called on the built model under the
            same seed, e.g. to run its backbone's ``init_weights()``; None keeps the weights the
            modules' ``__init__`` made.

    Returns:
        nn.Module: The model, in eval mode.

    Raises:
        UserError: a missing config or checkpoint, or a checkpoint that does not fit the model.
    """
    check_checkpoint_file(checkpoint, "checkpoint", TRAINED_CHECKPOINT_HELP)
    cfg = load_config(config, cfg_options)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_model(cfg)
        if checkpoint is None and initialise is not None:
            initialise(model)
    if checkpoint is not None:
        load_weights(model, checkpoint, config)
    return model.eval()


def load_weights(model: nn.Module, checkpoint: str, config: str) -> None:
    """Load a whole model's checkpoint into ``model``, refusing one that does not fit it exactly.

    Args:
        model (nn.Module): The model built from ``config``.
        checkpoint (str): The checkpoint (a ``state_dict``, ``model`` or bare weights, with or
            without DDP's ``module.`` prefix).
        config (str): Where ``model`` comes from, for the error message.

    Raises:
        UserError: weights missing, unexpected or of another shape (:func:`check_weights_fit`).
        FileNotFoundError: no such file.
        CheckpointError: an unreadable or unsafe file.
    """
    state_dict = extract_state_dict(read_checkpoint(checkpoint), checkpoint)
    check_weights_fit(model, state_dict, f"checkpoint {checkpoint} does not fit {config}")
    model.load_state_dict(state_dict)


def check_weights_fit(model: nn.Module, state_dict: Dict[str, Tensor], problem: str) -> None:
    """Raise a one-line :class:`UserError` unless ``state_dict`` holds exactly ``model``'s weights.

    Args:
        model (nn.Module): The model.
        state_dict (dict[str, Tensor]): The weights to load.
        problem (str): Start of the message, e.g. which file does not fit which config.

    Raises:
        UserError: weights missing, unexpected or of another shape, counted with an example,
            e.g. ``'...: weights 3 missing (e.g. neck.conv.weight), 1 unexpected (e.g. head.fc)'``.
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
