"""Run a toy job end to end: toy data, training, evaluation, pictures and a learning-curve plot.

    python tools/run_demo.py configs/det/maskrcnn_rmt_t_toy.py --work-dir work_dirs/demo
    python tools/run_demo.py configs/seg/fpn_rmt_t_toy.py --work-dir work_dirs/demo_seg

The config's ``default_scope`` picks the task (``mmdet``: boxes and masks, bbox/segm mAP;
``mmseg``: class maps, mIoU). Training and evaluation run ``tools/train.py`` and
``tools/test.py`` in subprocesses, so the demo exercises the real command line. The work dir
receives the training run (logs, checkpoints), ``test/`` (the evaluation run),
``predictions/`` (pictures of a few validation images), ``curves.png`` (training loss and the
validation metric over training) and ``summary.json``.

Re-running is idempotent: a finished training run (its final checkpoint exists) is reused and
only evaluation, pictures and plot are redone; an interrupted run resumes from its last
checkpoint; ``--retrain`` deletes the work dir and trains from scratch.

Every process runs on ``--threads`` CPU threads (default ``$OMP_NUM_THREADS``, else 1), which is
also what the subprocesses get as ``OMP_NUM_THREADS``.
"""

import argparse
import copy
import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402

TOOLS_DIR = osp.dirname(osp.abspath(__file__))
#: Validation metrics plotted and reported, per scope (the first is the headline figure).
METRIC_KEYS: Dict[str, Tuple[str, ...]] = {
    "mmdet": ("coco/bbox_mAP", "coco/segm_mAP"),
    "mmseg": ("mIoU",),
}
#: Where each scope's images live in its dataset's ``data_prefix``.
IMAGE_PREFIX_KEY = {"mmdet": "img", "mmseg": "img_path"}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description="Toy data, training, evaluation and plots")
    parser.add_argument("config", help="a toy config, e.g. configs/det/maskrcnn_rmt_t_toy.py")
    parser.add_argument("--work-dir", default="work_dirs/demo", help="output folder")
    parser.add_argument("--retrain", action="store_true", help="delete the work dir and retrain")
    parser.add_argument("--num-images", type=int, default=6, help="validation images to draw")
    parser.add_argument(
        "--score-thr", type=float, default=0.5, help="detection: draw boxes above this score"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=int(os.environ.get("OMP_NUM_THREADS", 1)),
        help="CPU threads per process (default: $OMP_NUM_THREADS, else 1)",
    )
    parser.add_argument(
        "--cfg-options",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="config overrides, passed on to train.py and test.py as they are",
    )
    return parser.parse_args(argv)


def parse_cfg_options(words: Sequence[str]) -> dict:
    """Read ``KEY=VALUE`` words the way mmengine's tools read ``--cfg-options``."""
    namespace = argparse.Namespace(cfg_options={})
    if words:
        DictAction(option_strings=["--cfg-options"], dest="cfg_options")(None, namespace, words)
    return namespace.cfg_options


def config_scope(cfg: Config) -> str:
    """The config's ``default_scope``: ``'mmdet'`` or ``'mmseg'``."""
    scope = cfg.get("default_scope")
    if scope not in METRIC_KEYS:
        raise ValueError(f"default_scope must be one of {list(METRIC_KEYS)}, got {scope!r}")
    return scope


def ensure_toy_data(cfg: Config, scope: str) -> str:
    """Generate the config's toy dataset if it is missing; returns the generator's summary."""
    from mmrmt.toy_data import make_toy_ade, make_toy_coco

    make = make_toy_coco if scope == "mmdet" else make_toy_ade
    return make(cfg.train_dataloader.dataset.data_root.rstrip("/"))


def final_checkpoint(cfg: Config, work_dir: str) -> str:
    """Path of the checkpoint that mmengine's CheckpointHook writes at the end of training."""
    train_cfg = cfg.train_cfg
    if "max_epochs" in train_cfg:
        return osp.join(work_dir, f"epoch_{train_cfg.max_epochs}.pth")
    return osp.join(work_dir, f"iter_{train_cfg.max_iters}.pth")


def run_tool(script: str, args: Sequence[str]) -> None:
    """Run ``tools/<script>`` with this interpreter; raises CalledProcessError on failure."""
    subprocess.run([sys.executable, osp.join(TOOLS_DIR, script), *args], check=True)


def train(
    config: str, cfg: Config, work_dir: str, extra: Sequence[str]
) -> Tuple[str, Optional[float]]:
    """Train unless the final checkpoint exists; resume an interrupted run.

    Returns:
        tuple: The final checkpoint and the seconds this call spent training (None when the
        finished run is reused; a resumed run counts only its resumed part).
    """
    checkpoint = final_checkpoint(cfg, work_dir)
    if osp.isfile(checkpoint):
        print(f"run_demo: reusing the finished training run in {work_dir}")
        return checkpoint, None
    resume = ["--resume"] if osp.isfile(osp.join(work_dir, "last_checkpoint")) else []
    start = time.time()
    run_tool("train.py", [config, "--work-dir", work_dir, *resume, *extra])
    return checkpoint, time.time() - start


def evaluate(config: str, checkpoint: str, work_dir: str, extra: Sequence[str]) -> Dict:
    """Evaluate ``checkpoint`` with ``tools/test.py``; returns the metrics it logged."""
    test_dir = osp.join(work_dir, "test")
    run_tool("test.py", [config, checkpoint, "--work-dir", test_dir, *extra])
    # mmengine's LoggerHook dumps the test metrics to <work_dir>/<timestamp>/<timestamp>.json.
    runs = sorted(glob.glob(osp.join(test_dir, "*", "*.json")))
    if not runs:
        raise FileNotFoundError(f"tools/test.py wrote no metrics file under {test_dir}")
    with open(runs[-1]) as f:
        return json.load(f)


def read_scalars(work_dir: str) -> Tuple[List[Dict], List[Dict]]:
    """Training and validation records from mmengine's ``vis_data/scalars.json`` logs.

    Every training run (a resumed run adds one) under ``work_dir`` is read in time order; a
    later record replaces an earlier one at the same step.

    Args:
        work_dir (str): The training work dir.

    Returns:
        tuple: (train records with ``loss``, validation records), each sorted by ``step``.
    """
    train: Dict[int, Dict] = {}
    val: Dict[int, Dict] = {}
    for path in sorted(glob.glob(osp.join(work_dir, "*", "vis_data", "scalars.json"))):
        with open(path) as f:
            for line in f:
                record = json.loads(line)
                (train if "loss" in record else val)[record["step"]] = record
    return [train[s] for s in sorted(train)], [val[s] for s in sorted(val)]


def plot_curves(
    train_records: List[Dict],
    val_records: List[Dict],
    metric_keys: Sequence[str],
    out_file: str,
    val_step_label: str = "epoch",
) -> str:
    """Plot training loss (left) and validation metrics (right) to a PNG.

    Args:
        train_records (list[dict]): Records with ``step`` (iteration) and ``loss``.
        val_records (list[dict]): Records with ``step`` and some of ``metric_keys``.
        metric_keys (Sequence[str]): Validation metrics to draw, e.g. ``coco/bbox_mAP``.
        out_file (str): PNG path (its folder is created).
        val_step_label (str): What a validation ``step`` counts: ``'epoch'`` or ``'iteration'``.

    Returns:
        str: ``out_file``.
    """
    fig, (loss_ax, metric_ax) = plt.subplots(1, 2, figsize=(10, 4))
    loss_ax.plot([r["step"] for r in train_records], [r["loss"] for r in train_records])
    loss_ax.set(xlabel="iteration", ylabel="loss", title="training loss")
    for key in metric_keys:
        points = [(r["step"], r[key]) for r in val_records if key in r]
        if points:
            steps, values = zip(*points)
            metric_ax.plot(steps, values, marker="o", label=key)
    metric_ax.set(xlabel=val_step_label, title="validation")
    if metric_ax.get_legend_handles_labels()[0]:
        metric_ax.legend()
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    fig.savefig(out_file, dpi=100)
    plt.close(fig)
    return out_file


def val_images(cfg: Config, scope: str, count: int) -> List[str]:
    """The first ``count`` validation images (sorted by name)."""
    dataset = cfg.val_dataloader.dataset
    folder = osp.join(dataset.data_root, dataset.data_prefix[IMAGE_PREFIX_KEY[scope]])
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith((".png", ".jpg")))
    return [osp.join(folder, name) for name in names[:count]]


def enlarge_prediction(sample, factor: int):
    """Scale a data sample's predictions by an integer ``factor`` (nearest neighbour).

    Args:
        sample (DetDataSample | SegDataSample): A model's output for one image.
        factor (int): Upscaling factor.

    Returns:
        The same kind of sample holding only the enlarged predictions.
    """
    if "pred_instances" in sample:
        instances = sample.pred_instances.clone()
        instances.bboxes = instances.bboxes * factor
        if "masks" in instances:
            instances.masks = instances.masks.repeat_interleave(factor, 1).repeat_interleave(
                factor, 2
            )
        return type(sample)(pred_instances=instances)
    from mmengine.structures import PixelData

    label_map = sample.pred_sem_seg.data.repeat_interleave(factor, 1).repeat_interleave(factor, 2)
    return type(sample)(pred_sem_seg=PixelData(data=label_map))


def draw_predictions(
    cfg: Config,
    checkpoint: Optional[str],
    images: Sequence[str],
    out_dir: str,
    score_thr: float = 0.5,
    display_size: int = 384,
) -> List[str]:
    """Draw a model's predictions on ``images`` with mmdet's or mmseg's APIs and visualizer.

    Detection draws boxes, labels and masks scoring above ``score_thr``; segmentation draws the
    class map as a coloured overlay. Small toy images are enlarged (nearest neighbour, with the
    predictions) so that the labels stay readable.

    Args:
        cfg (Config): Model config (its scope picks the library).
        checkpoint (str | None): Weights; None keeps the random initial weights.
        images (Sequence[str]): Image files.
        out_dir (str): Pictures go here under the images' file names.
        score_thr (float): Detection score threshold.
        display_size (int): Enlarge each picture by the integer factor that brings its short
            side closest to this without exceeding it (at least 1).

    Returns:
        list[str]: The written pictures.
    """
    import mmcv

    scope = config_scope(cfg)
    # init_detector / init_model edit the config they are given.
    cfg = copy.deepcopy(cfg)
    if scope == "mmdet":
        from mmdet.apis import inference_detector, init_detector
        from mmdet.registry import VISUALIZERS

        model = init_detector(cfg, checkpoint, device="cpu")
        infer, draw_options = inference_detector, dict(pred_score_thr=score_thr)
    else:
        from mmseg.apis import inference_model, init_model
        from mmseg.registry import VISUALIZERS

        model = init_model(cfg, checkpoint, device="cpu")
        infer, draw_options = inference_model, {}
    # A name of our own, so that a Runner's visualizer in the same process is left alone.
    visualizer = VISUALIZERS.build(dict(cfg.visualizer, name=f"run_demo_{scope}"))
    # A Runner's checkpoint carries the class names; random weights take the config's.
    dataset_meta = getattr(model, "dataset_meta", None) if checkpoint else None
    visualizer.dataset_meta = dataset_meta or dict(cfg.test_dataloader.dataset.get("metainfo", {}))
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for path in images:
        # One image at a time: mmseg batches a list and its images may differ in size.
        sample = infer(model, path)
        image = mmcv.imread(path, channel_order="rgb")
        factor = max(1, display_size // min(image.shape[:2]))
        target = osp.join(out_dir, osp.basename(path))
        visualizer.add_datasample(
            osp.basename(path),
            image.repeat(factor, 0).repeat(factor, 1),
            enlarge_prediction(sample, factor),
            draw_gt=False,
            out_file=target,
            **draw_options,
        )
        written.append(target)
    return written


def main(argv: Optional[List[str]] = None) -> Dict:
    """Run the demo and print a summary; returns the summary."""
    args = parse_args(argv)
    # One thread by default: the toy model's many small ops gain little from a second thread,
    # and on a busy machine two OpenMP threads made training steps up to 20x slower.
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)
    torch.set_num_threads(args.threads)
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(parse_cfg_options(args.cfg_options))
    scope = config_scope(cfg)
    work_dir = args.work_dir
    if args.retrain:
        shutil.rmtree(work_dir, ignore_errors=True)
    print(ensure_toy_data(cfg, scope))

    extra = ["--cfg-options", *args.cfg_options] if args.cfg_options else []
    checkpoint, train_seconds = train(args.config, cfg, work_dir, extra)
    summary_file = osp.join(work_dir, "summary.json")
    if train_seconds is None and osp.isfile(summary_file):
        with open(summary_file) as f:
            train_seconds = json.load(f).get("train_seconds")
    metrics = evaluate(args.config, checkpoint, work_dir, extra)

    pictures = draw_predictions(
        cfg,
        checkpoint,
        val_images(cfg, scope, args.num_images),
        osp.join(work_dir, "predictions"),
        args.score_thr,
    )
    train_records, val_records = read_scalars(work_dir)
    by_epoch = "max_epochs" in cfg.train_cfg
    plot = plot_curves(
        train_records,
        val_records,
        METRIC_KEYS[scope],
        osp.join(work_dir, "curves.png"),
        "epoch" if by_epoch else "iteration",
    )
    summary = dict(
        config=args.config,
        checkpoint=checkpoint,
        train_seconds=train_seconds,
        test_metrics={k: metrics[k] for k in METRIC_KEYS[scope] if k in metrics},
        val_curve=[
            {"step": r["step"], **{k: r[k] for k in METRIC_KEYS[scope] if k in r}}
            for r in val_records
        ],
        pictures=pictures,
        plot=plot,
    )
    with open(summary_file, "w") as f:
        json.dump(summary, f, indent=2)
    for line in summary_lines(summary, METRIC_KEYS[scope][0], "epoch" if by_epoch else "iter"):
        print(f"run_demo: {line}")
    return summary


def summary_lines(summary: Dict, headline: str, step_name: str) -> List[str]:
    """The demo's closing report: time, final test figures, learning curve, outputs.

    Args:
        summary (dict): What :func:`main` writes to ``summary.json``.
        headline (str): The metric followed over training, e.g. ``coco/bbox_mAP``.
        step_name (str): What a validation step counts (``epoch`` or ``iter``).

    Returns:
        list[str]: Three lines.
    """
    seconds = summary["train_seconds"]
    duration = "time unknown (reused run)" if seconds is None else f"{seconds / 60:.1f} min"
    figures = ", ".join(f"{k} {v:.3f}" for k, v in summary["test_metrics"].items())
    curve = "; ".join(
        f"{step_name} {r['step']}: {r[headline]:.3f}" for r in summary["val_curve"] if headline in r
    )
    outputs = f"pictures {osp.dirname(summary['pictures'][0])}/, plot {summary['plot']}"
    return [
        f"training {duration}; tools/test.py on the final checkpoint: {figures}",
        f"validation {headline} over training: {curve}",
        outputs,
    ]


if __name__ == "__main__":
    main()
