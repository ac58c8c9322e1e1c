"""The one loader of a model outside a Runner: a config's model, or an RMT preset, with a
checkpoint's weights or seeded random ones, in eval or train mode.

Every tool and module that builds a model to look at, export, count or check it loads it here:
:func:`load_model` for a config's model (or its backbone), :func:`load_rmt` for an RMT preset.
Both refuse a missing checkpoint in one line. Training and testing load through mmengine's
Runner instead; ``tools/benchmark.py`` builds its candidates with
:func:`~mmrmt.utils.config.build_model` and its own seed.
"""

from typing import Callable, Dict, Optional, Union

import torch
from mmengine.config import Config
from torch import Tensor, nn

from ..checkpoint import (
    CheckpointError,
    diff_weights,
    extract_state_dict,
    load_backbone_checkpoint,
    read_checkpoint,
)
from ..errors import InvalidValueError
from ..models import RMT
from .config import build_model, load_config
from .data_files import check_checkpoint_file

#: What to pass when a whole model's checkpoint is missing.
TRAINED_CHECKPOINT_HELP = "Pass a checkpoint written by tools/train.py"
#: What to pass when a backbone's checkpoint is missing (``backbone_only``).
BACKBONE_CHECKPOINT_HELP = "Pass a tools/train.py or RMT ImageNet checkpoint"
#: What to pass when an RMT preset's checkpoint is missing.
PRESET_CHECKPOINT_HELP = "Pass an RMT ImageNet or detection checkpoint"
#: The modes a model is returned in.
MODES = ("eval", "train")


def load_model(
    config: Union[str, Config],
    checkpoint: Optional[str] = None,
    cfg_options: Optional[dict] = None,
    initialise: Optional[Callable[[nn.Module], None]] = None,
    mode: str = "eval",
    backbone_only: bool = False,
) -> nn.Module:
    """Build a config's model (or its backbone), with a checkpoint's weights or seeded random ones.

    Random weights come from seed 0, so the same config gives the same model every time; the
    global random state is left as it was. SyncBN becomes BN (:func:`build_model`).

    Args:
        config (str | Config): An mmdet or mmseg config file, or a config already read.
        checkpoint (str | None): The whole model's checkpoint (``tools/train.py``'s), which must
            hold exactly the model's weights; with ``backbone_only`` and an RMT backbone, an
            authors' ImageNet or detection checkpoint works too. None keeps random weights.
        cfg_options (dict | None): Parsed ``--cfg-options``, applied to a config file.
        initialise (callable | None): Without a checkpoint, called on the built model under the
            same seed, e.g. to run its backbone's ``init_weights()``; None keeps the weights the
            modules' ``__init__`` made (no ``init_weights()``, which could read the config's
            pretrained backbone).
        mode (str): ``'eval'`` or ``'train'``: the mode of the returned module. Default: 'eval'.
        backbone_only (bool): Return the model's backbone alone. Default: False.

    Returns:
        nn.Module: The model, or its backbone, in ``mode``.

    Raises:
        FileNotFoundError: a missing config or checkpoint.
        InvalidValueError: a mode that is not one of :data:`MODES`.
        CheckpointError: a checkpoint that cannot be read or does not fit the model.
    """
    _check_mode(mode)
    help_text = BACKBONE_CHECKPOINT_HELP if backbone_only else TRAINED_CHECKPOINT_HELP
    check_checkpoint_file(checkpoint, "checkpoint", help_text)
    if isinstance(config, Config):
        cfg, source = config, config.filename or "the config"
    else:
        cfg, source = load_config(config, cfg_options), config
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_model(cfg)
        if checkpoint is None and initialise is not None:
            initialise(model)
    if checkpoint is not None and backbone_only and isinstance(model.backbone, RMT):
        # Also reads the authors' ImageNet checkpoints, and detectors' with their prefix.
        load_backbone_checkpoint(model.backbone, checkpoint)
    elif checkpoint is not None:
        load_weights(model, checkpoint, source)
    if backbone_only:
        model = model.backbone
    model.train(mode == "train")
    return model


def load_rmt(
    arch: Union[str, dict], checkpoint: Optional[str] = None, mode: str = "eval", **options
) -> RMT:
    """An RMT preset (``'t'``, ``'s'``...), with an authors' or mmrmt checkpoint or initialised.

    Without a checkpoint the backbone runs its own ``init_weights()`` under seed 0 (the global
    random state is left as it was).

    Args:
        arch (str | dict): A preset name or an arch dict (:func:`mmrmt.models.resolve_arch`).
        checkpoint (str | None): An authors' ImageNet or detection checkpoint, or an mmrmt one
            (:func:`mmrmt.checkpoint.load_backbone_checkpoint`).
        mode (str): ``'eval'`` or ``'train'``. Default: 'eval'.
        **options: Other :class:`~mmrmt.models.RMT` arguments (``attn_impl``, ``with_cp``...).

    Returns:
        RMT: The backbone, in ``mode``.

    Raises:
        InvalidValueError: an unknown preset or option, or a mode not in :data:`MODES`.
        FileNotFoundError: a missing checkpoint.
        CheckpointError: a checkpoint that cannot be read or is for another arch.
    """
    _check_mode(mode)
    check_checkpoint_file(checkpoint, "checkpoint", PRESET_CHECKPOINT_HELP)
    try:
        model = RMT(arch=arch, **options)
    except ValueError as error:
        raise InvalidValueError(str(error)) from error
    if checkpoint is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model.init_weights()
    else:
        load_backbone_checkpoint(model, checkpoint)
    return model.train(mode == "train")


def _check_mode(mode: str) -> None:
    """Refuse a mode that is not one of :data:`MODES`, naming it."""
    if mode not in MODES:
        raise InvalidValueError(f"mode must be one of {MODES}, got {mode!r}")


def load_weights(model: nn.Module, checkpoint: str, config: str) -> None:
    """Load a whole model's checkpoint into ``model``, refusing one that does not fit it exactly.

    Args:
        model (nn.Module): The model built from ``config``.
        checkpoint (str): The checkpoint (a ``state_dict``, ``model`` or bare weights, with or
            without DDP's ``module.`` prefix).
        config (str): Where ``model`` comes from, for the error message.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: an unreadable or unsafe file, or weights missing, unexpected or of
            another shape (:func:`check_weights_fit`).
    """
    state_dict = extract_state_dict(read_checkpoint(checkpoint), checkpoint)
    check_weights_fit(model, state_dict, f"checkpoint {checkpoint} does not fit {config}")
    model.load_state_dict(state_dict)


def check_weights_fit(model: nn.Module, state_dict: Dict[str, Tensor], problem: str) -> None:
    """Raise a one-line ``CheckpointError`` unless ``state_dict`` holds exactly ``model``'s weights.

    Args:
        model (nn.Module): The model.
        state_dict (dict[str, Tensor]): The weights to load.
        problem (str): Start of the message, e.g. which file does not fit which config.

    Raises:
        CheckpointError: weights missing, unexpected or of another shape, counted with an example,
            e.g. ``'...: weights 3 missing (e.g. neck.conv.weight), 1 unexpected (e.g. head.fc)'``.
    """
    diff = diff_weights(model.state_dict(), state_dict)
    mismatches = {
        "missing": diff.missing,
        "of another shape": [
            f"{name}: {saved} in the file, {expected} here"
            for name, saved, expected in diff.wrong_shapes
        ],
        "unexpected": diff.unexpected,
    }
    found = [
        f"{len(names)} {kind} (e.g. {names[0]})" for kind, names in mismatches.items() if names
    ]
    if found:
        raise CheckpointError(f"{problem}: weights " + ", ".join(found))
