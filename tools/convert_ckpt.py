"""Convert the authors' RMT checkpoints to mmengine files for mmrmt.

    python tools/convert_ckpt.py SRC DST [--config CONFIG]

* ImageNet files (``{'model': ...}``) become backbone checkpoints (``{'state_dict', 'meta'}``)
  for ``init_cfg=dict(type='Pretrained', checkpoint=DST)``: the classifier and the ``Relpos``
  buffers go, after the decay rates are checked against the arch the shapes match.
* Full detection checkpoints of their mmdet 2.x fork (``backbone.``/``neck.``/head keys) become
  mmdet 3.x checkpoints that ``tools/test.py CONFIG DST`` evaluates
  (:mod:`mmrmt.checkpoint.authors`).

With ``--config`` the result is loaded into that config's model (or its backbone, for ImageNet
files) and every missing or unused key is listed; missing keys are an error.
"""

import argparse
import os
import sys
from typing import Dict, List, Optional, Tuple

import torch

from mmrmt.checkpoint import CheckpointError, convert_authors_checkpoint, read_checkpoint
from mmrmt.utils import UserError, build_model, load_config, run_with_user_errors

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


def load_into_config_model(
    state_dict: Dict[str, torch.Tensor], config: str, detector: bool
) -> Tuple[List[str], List[str]]:
    """Load ``state_dict`` into the model (or backbone) of ``config``.

    Returns:
        tuple: (missing keys, unused keys).
    """
    cfg = load_config(config)
    model = build_model(cfg, None if detector else dict(cfg.model.backbone, init_cfg=None))
    result = model.load_state_dict(state_dict, strict=False)
    return list(result.missing_keys), list(result.unexpected_keys)


def convert(args: argparse.Namespace) -> None:
    """Convert ``args.src`` to ``args.dst`` and report what was done."""
    if os.path.abspath(args.src) == os.path.abspath(args.dst):
        raise UserError("refusing to overwrite the source checkpoint; pick another DST")
    source = os.path.basename(args.src)
    converted = convert_authors_checkpoint(read_checkpoint(args.src), source)
    arch, kind = converted["meta"]["rmt_arch"], converted["meta"]["kind"]
    detector = kind == "detector"
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
    return run_with_user_errors(convert, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
