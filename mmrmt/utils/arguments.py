"""Command-line options shared by the tools, read the way mmdet's and mmseg's tools read them."""

import argparse
import os
from typing import Sequence

from mmengine.config import DictAction

from .errors import DEBUG_ENV


def add_config_args(parser: argparse.ArgumentParser) -> None:
    """Add ``--cfg-options`` and ``--debug`` to ``parser``."""
    parser.add_argument(
        "--cfg-options",
        nargs="+",
        action=DictAction,
        help="override config settings, key=value (e.g. model.backbone.init_cfg=None)",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help=f"show the full traceback of user errors (or set {DEBUG_ENV}=1)",
    )


def add_launcher_args(parser: argparse.ArgumentParser) -> None:
    """Add ``--launcher`` and ``--local_rank`` (mmdet's and mmseg's distributed options)."""
    parser.add_argument(
        "--launcher", choices=["none", "pytorch", "slurm", "mpi"], default="none", help="launcher"
    )
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK instead.
    parser.add_argument("--local_rank", "--local-rank", type=int, default=0)


def parse_cfg_options(words: Sequence[str]) -> dict:
    """Read ``KEY=VALUE`` words the way ``--cfg-options`` reads them (mmengine's ``DictAction``).

    Args:
        words (Sequence[str]): The words after ``--cfg-options``.

    Returns:
        dict: Dotted keys to values, as :meth:`mmengine.config.Config.merge_from_dict` takes them.
    """
    namespace = argparse.Namespace(cfg_options={})
    if words:
        DictAction(option_strings=["--cfg-options"], dest="cfg_options")(None, namespace, words)
    return namespace.cfg_options


def set_local_rank_env(local_rank: int) -> None:
    """Export ``LOCAL_RANK`` for launchers that pass ``--local_rank`` instead of setting it."""
    os.environ.setdefault("LOCAL_RANK", str(local_rank))
