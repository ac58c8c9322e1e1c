"""Evaluate a checkpoint with an mmdet or mmseg config (the config's default_scope picks).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE_OR_DIR] [--show-dir DIR]
        [--tta] [--cfg-options KEY=VALUE ...] [--launcher pytorch]

``--out``: detection dumps the predictions to a ``.pkl`` file, segmentation writes the predicted
maps to a folder. ``--show-dir``: pictures of the predictions (under the run's work dir).
``--tta``: flip test-time augmentation (detection: box heads only, as mmdet's ``DetTTAModel``).
Expected mistakes end with a one-line message and exit code 1; ``--debug`` shows the traceback.
"""

import argparse
import copy
import os
import sys
from typing import List, Optional

from mmengine.config import Config, ConfigDict

from mmrmt.cli import (
    UserError,
    add_config_args,
    add_launcher_args,
    build_runner,
    check_checkpoint_file,
    check_data_files,
    config_scope,
    load_config,
    run_tool,
    set_local_rank_env,
    set_work_dir,
    setup_launcher,
)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line (mmdet's and mmseg's ``tools/test.py`` options)."""
    parser = argparse.ArgumentParser(description="Evaluate an mmdet / mmseg model with mmrmt")
    parser.add_argument("config", help="config file")
    parser.add_argument("checkpoint", help="checkpoint file")
    parser.add_argument("--work-dir", help="where the metrics file goes")
    parser.add_argument(
        "--out", help="detection: .pkl file for the raw predictions; segmentation: a folder"
    )
    parser.add_argument("--show-dir", help="save pictures of the predictions here")
    parser.add_argument("--tta", action="store_true", help="flip test-time augmentation")
    add_config_args(parser)
    add_launcher_args(parser)
    args = parser.parse_args(argv)
    set_local_rank_env(args.local_rank)
    return args


def enable_visualization(cfg: Config, scope: str, show_dir: str) -> None:
    """Make the visualization hook draw every test image into ``show_dir``.

    A relative ``show_dir`` lies under the run's folder (mmdet: ``work_dir/<timestamp>/``,
    mmseg: ``work_dir/``, pictures in its ``vis_data/vis_image/``).
    """
    hook = cfg.get("default_hooks", {}).get("visualization")
    if hook is None:
        raise UserError("--show-dir needs default_hooks.visualization in the config")
    hook["draw"] = True
    if scope == "mmdet":
        hook["test_out_dir"] = show_dir
    else:
        hook["interval"] = 1  # mmseg draws every 50th image by default
        cfg.visualizer["save_dir"] = os.path.join(cfg.work_dir, show_dir)


def default_det_tta(cfg: Config) -> None:
    """Add mmdet's default flip TTA (``DetTTAModel`` + ``TestTimeAug``) when the config has none."""
    cfg.setdefault(
        "tta_model",
        dict(
            type="DetTTAModel",
            tta_cfg=dict(nms=dict(type="nms", iou_threshold=0.5), max_per_img=100),
        ),
    )
    if "tta_pipeline" in cfg:
        return
    dataset = cfg.test_dataloader.dataset
    while "dataset" in dataset:
        dataset = dataset["dataset"]
    pipeline = copy.deepcopy(dataset.pipeline)
    pipeline[-1] = dict(
        type="TestTimeAug",
        transforms=[
            [dict(type="RandomFlip", prob=1.0), dict(type="RandomFlip", prob=0.0)],
            [
                dict(
                    type="PackDetInputs",
                    meta_keys=(
                        "img_id",
                        "img_path",
                        "ori_shape",
                        "img_shape",
                        "scale_factor",
                        "flip",
                        "flip_direction",
                    ),
                )
            ],
        ],
    )
    cfg.tta_pipeline = pipeline


def enable_tta(cfg: Config, scope: str) -> None:
    """Wrap the model in the config's TTA model and test with its TTA pipeline."""
    if scope == "mmdet":
        if cfg.model.get("roi_head", {}).get("mask_head") is not None:
            raise UserError(
                "--tta: mmdet's DetTTAModel merges boxes only, not masks; use it with box "
                "detectors such as the RetinaNet configs"
            )
        default_det_tta(cfg)
    elif "tta_model" not in cfg or "tta_pipeline" not in cfg:
        raise UserError("--tta needs tta_model and tta_pipeline in the segmentation config")
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline


def check_out_path(scope: str, out: str) -> None:
    """Detection dumps a pickle: insist on the extension mmdet's ``DumpDetResults`` requires."""
    if scope == "mmdet" and not out.endswith((".pkl", ".pickle")):
        raise UserError(f"--out must be a .pkl file for detection configs, got {out}")


def keep_seg_predictions(cfg: Config, out: str) -> None:
    """mmseg: have ``IoUMetric`` write the predicted maps to the folder ``out``."""
    cfg.test_evaluator["output_dir"] = out
    cfg.test_evaluator["keep_results"] = True


def dump_det_predictions(runner, out: str) -> None:
    """mmdet: dump the raw predictions to the pickle ``out`` (mmdet's ``DumpDetResults``)."""
    from mmdet.evaluation import DumpDetResults

    runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=out))


def test(args: argparse.Namespace) -> None:
    """Build the config and the Runner from ``args`` and evaluate the checkpoint."""
    cfg = load_config(args.config, args.cfg_options)
    scope = config_scope(cfg)
    set_work_dir(cfg, args.config, args.work_dir)
    check_checkpoint_file(
        args.checkpoint,
        "checkpoint",
        "Pass a .pth written by tools/train.py, or an authors' checkpoint converted with "
        "tools/convert_ckpt.py",
    )
    cfg.load_from = args.checkpoint
    if args.out:
        check_out_path(scope, args.out)
    if args.show_dir:
        enable_visualization(cfg, scope, args.show_dir)
    if args.tta:
        enable_tta(cfg, scope)
    check_data_files(cfg, ["test_dataloader", "test_evaluator"])
    if args.out and scope == "mmseg":
        keep_seg_predictions(cfg, args.out)
    setup_launcher(cfg, args.launcher)
    runner = build_runner(cfg)
    if args.out and scope == "mmdet":
        dump_det_predictions(runner, args.out)
    runner.test()


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; returns the exit code."""
    args = parse_args(argv)
    return run_tool(test, args)


if __name__ == "__main__":
    sys.exit(main())
