"""How the options of ``tools/test.py`` change a config and its Runner: ``--show-dir``, ``--tta``,
``--out``, for mmdet and mmseg configs alike."""

import copy
import os

from mmengine.config import Config, ConfigDict

from .errors import UserError


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
