"""Convert the authors' RMT checkpoints to mmengine files for mmrmt.

    python tools/convert_ckpt.py SRC DST [--config CONFIG]

* ImageNet files (``{'model': ...}``) become backbone checkpoints (``{'state_dict', 'meta'}``)
  for ``init_cfg=dict(type='Pretrained', checkpoint=DST)``: the classifier and the ``Relpos``
  buffers go, after the decay rates are checked against the arch the shapes match.
* Full detection checkpoints of their mmdet 2.x fork (``backbone.``/``neck.``/head keys) become
  mmdet 3.x checkpoints that ``tools/test.py CONFIG DST`` evaluates
  (:mod:`mmrmt.checkpoint.detection`).

With ``--config`` the result is loaded into that config's model (or its backbone, for ImageNet
files) and every missing or unused key is listed; missing keys are an error.
"""

import argparse
import os
import sys
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.registry import init_default_scope

from mmrmt.checkpoint import (
    CheckpointError,
    convert_authors_backbone,
    convert_detection_checkpoint,
    extract_state_dict,
    read_checkpoint,
)
from mmrmt.checkpoint.detection import BACKBONE_PREFIX, check_backbone_decays
from mmrmt.cli import UserError, config_scope, load_config, run_tool

#: Backbone keys of the per-stage output norms, which ImageNet checkpoints do not have.
OUTPUT_NORMS = "extra_norms."


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description="Convert the authors' RMT checkpoints")
    parser.add_argument("src", help="the authors' checkpoint (ImageNet or detection)")
    parser.add_argument("dst", help="output .pth")
    parser.add_argument("--config", help="check the result against this config's model")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of user errors")
    return parser.parse_args(argv)


def convert_imagenet_checkpoint(checkpoint: dict, source: str) -> dict:
    """ImageNet ``{'model': ...}`` to a backbone checkpoint ``{'state_dict', 'meta'}``."""
    state_dict, decays = convert_authors_backbone(extract_state_dict(checkpoint, source))
    arch = check_backbone_decays(state_dict, decays, source)
    return {"state_dict": state_dict, "meta": {"rmt_arch": arch, "converted_from": source}}


def is_detection_checkpoint(checkpoint: dict, source: str) -> bool:
    """Whether the weights belong to a whole detector (``backbone.`` keys) or a backbone."""
    return any(name.startswith(BACKBONE_PREFIX) for name in extract_state_dict(checkpoint, source))


def load_into_config_model(
    state_dict: Dict[str, torch.Tensor], config: str, detector: bool
) -> Tuple[List[str], List[str]]:
    """Load ``state_dict`` into the model (or backbone) of ``config``.

    Returns:
        tuple: (missing keys, unused keys).
    """
    cfg = load_config(config)
    scope = config_scope(cfg)
    init_default_scope(scope)
    registry = __import__(f"{scope}.registry", fromlist=["MODELS"]).MODELS
    if detector:
        model = registry.build(cfg.model)
    else:
        model = registry.build(dict(cfg.model.backbone, init_cfg=None))
    result = model.load_state_dict(state_dict, strict=False)
    return list(result.missing_keys), list(result.unexpected_keys)


def convert(args: argparse.Namespace) -> None:
    """Convert ``args.src`` to ``args.dst`` and report what was done."""
    if os.path.abspath(args.src) == os.path.abspath(args.dst):
        raise UserError("refusing to overwrite the source checkpoint; pick another DST")
    source = os.path.basename(args.src)
    checkpoint = read_checkpoint(args.src)
    detector = is_detection_checkpoint(checkpoint, source)
    if detector:
        converted = convert_detection_checkpoint(checkpoint, source)
    else:
        converted = convert_imagenet_checkpoint(checkpoint, source)
    arch = converted["meta"]["rmt_arch"]
    kind = "detector" if detector else "backbone"
    print(
        f"{source}: {kind} with an "
        + (f"RMT-{arch.upper()} backbone" if arch else "RMT backbone of no preset (not checked)")
        + f", {len(converted['state_dict'])} tensors"
    )
    if args.config:
        missing, unused = load_into_config_model(converted["state_dict"], args.config, detector)
        if not detector:
            # ImageNet models have no output norms: the detector trains them from scratch.
            fresh = [name for name in missing if name.startswith(OUTPUT_NORMS)]
            missing = [name for name in missing if not name.startswith(OUTPUT_NORMS)]
            if fresh:
                print(f"new in the dense-prediction backbone (trained from scratch): {fresh}")
        if unused:
            print(f"not used by {args.config}: {', '.join(unused)}")
        if missing:
            raise CheckpointError(
                f"{source} lacks {len(missing)} weights of {args.config}'s model: "
                + ", ".join(missing[:8])
                + (" ..." if len(missing) > 8 else "")
            )
        print(f"every weight of {args.config}'s {kind} is in the converted file")
    os.makedirs(os.path.dirname(os.path.abspath(args.dst)), exist_ok=True)
    torch.save(converted, args.dst)
    print(f"wrote {args.dst}")


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; returns the exit code."""
    return run_tool(convert, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
