"""How often ``torch.compile`` compiles the backbone over the batches of a multi-scale recipe.

Used by ``tools/count_compiles.py CONFIG``. Detection batches change size from step to step, so a
compiled model that specialised on each size would recompile all epoch. This module makes the
batch shapes a config's training pipeline gives and counts the compiles of its backbone:

* **Shapes.** The config's own train transforms (resizes, crops, flips: every step after the
  loading ones and before packing) run on blank images of common COCO photo sizes. Images are
  grouped by orientation as mmdet's ``AspectRatioBatchSampler`` does, and each batch is padded
  as the data preprocessor pads it: to ``pad_size_divisor`` (mmdet), or to ``size`` (mmseg).
* **Compiles.** The backbone, in training mode, runs each batch under ``torch.compile`` with a
  counting backend (Dynamo decides every compile; the backend only receives the graphs, so
  ``'eager'`` counts the same compiles as Inductor without generating code). The forward pass
  is enough: a compile happens when Dynamo's guards on the forward fail.
"""

import random
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
import torch._dynamo
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.registry import TRANSFORMS, init_default_scope
from torch import nn
from torch._dynamo.testing import CompileCounterWithBackend

from ..utils.config import config_scope

#: (H, W) of common COCO photos: most are 640 px on the long side, landscape or portrait.
COCO_PHOTO_SIZES = ((480, 640), (427, 640), (426, 640), (640, 480), (640, 427), (375, 500))

#: Pipeline steps that read files or pack results; the others decide the image's size.
NOT_SHAPING = {"LoadImageFromFile", "LoadAnnotations", "PackDetInputs", "PackSegInputs"}


def shaping_transforms(cfg: Config) -> Compose:
    """The config's train transforms that change the image size (resize, crop, flip...).

    Args:
        cfg (Config): A detection or segmentation config with ``train_dataloader``.

    Returns:
        Compose: Those transforms, built from the config scope's ``TRANSFORMS``.
    """
    init_default_scope(config_scope(cfg))
    steps = [
        step
        for step in cfg.train_dataloader.dataset.pipeline
        if step["type"].split(".")[-1] not in NOT_SHAPING
    ]
    return Compose([TRANSFORMS.build(step) for step in steps])


def batch_shapes(
    cfg: Config,
    num_batches: int,
    photo_sizes: Sequence[Tuple[int, int]] = COCO_PHOTO_SIZES,
    seed: int = 0,
) -> List[Tuple[int, int, int]]:
    """Padded batch shapes the config's training pipeline gives ``photo_sizes``.

    Args:
        cfg (Config): The training config (its pipeline, batch size and padding).
        num_batches (int): How many batches to make.
        photo_sizes (Sequence[tuple[int, int]]): (H, W) the images are drawn from.
        seed (int): Seeds the draws and the pipeline's own randomness.

    Returns:
        list[tuple[int, int, int]]: (batch, H, W) of each batch, padded.
    """
    random.seed(seed)
    np.random.seed(seed)
    transforms = shaping_transforms(cfg)
    batch_size = cfg.train_dataloader.batch_size
    preprocessor = cfg.model.get("data_preprocessor", {})
    divisor = preprocessor.get("pad_size_divisor") or 1
    # mmseg's preprocessor pads every batch to its fixed ``size`` (the crop size) instead.
    min_height, min_width = preprocessor.get("size") or (0, 0)
    by_orientation = [
        [size for size in photo_sizes if size[1] >= size[0]],
        [size for size in photo_sizes if size[1] < size[0]],
    ]
    groups = [group for group in by_orientation if group]
    shapes = []
    for _ in range(num_batches):
        group = random.choice(groups)  # one orientation per batch, as AspectRatioBatchSampler
        sizes = [transformed_size(transforms, random.choice(group)) for _ in range(batch_size)]
        height, width = (max(size[axis] for size in sizes) for axis in (0, 1))
        height, width = max(height, min_height), max(width, min_width)
        shapes.append((batch_size, pad_to(height, divisor), pad_to(width, divisor)))
    return shapes


def transformed_size(transforms: Compose, size: Tuple[int, int]) -> Tuple[int, int]:
    """(H, W) of a blank ``size`` image after ``transforms``."""
    image = np.zeros((*size, 3), np.uint8)
    # mmseg's crop reads the label map (to bound one class's share of the crop).
    label_map = np.zeros(size, np.uint8)
    results = dict(img=image, gt_seg_map=label_map, seg_fields=["gt_seg_map"])
    results = transforms(dict(results, img_shape=size, ori_shape=size))
    return tuple(results["img"].shape[:2])


def pad_to(size: int, divisor: int) -> int:
    """``size`` rounded up to a multiple of ``divisor``."""
    return -(-size // divisor) * divisor


def count_compiles(
    model: nn.Module, shapes: Sequence[Tuple[int, int, int]], backend: str = "eager"
) -> List[Dict]:
    """Run ``model`` compiled over batches of ``shapes`` and record when it compiled.

    Args:
        model (nn.Module): The module to compile (its mode is kept).
        shapes (Sequence[tuple[int, int, int]]): (batch, H, W) of each batch, in order.
        backend (str): The compiler behind the counter. Default: ``'eager'``.

    Returns:
        list[dict]: Per batch: ``shape`` and ``compiles`` (the total so far).
    """
    torch._dynamo.reset()
    counter = CompileCounterWithBackend(backend)
    compiled = torch.compile(model, backend=counter)
    record = []
    for batch, height, width in shapes:
        compiled(torch.randn(batch, 3, height, width))
        record.append(dict(shape=(batch, height, width), compiles=counter.frame_count))
    torch._dynamo.reset()
    return record


def report(record: List[Dict]) -> str:
    """A Markdown summary: batches, distinct shapes, compiles and the batches that compiled."""
    distinct = len({entry["shape"] for entry in record})
    lines = [
        f"batches: {len(record)}, distinct shapes: {distinct}, "
        f"compiles: {record[-1]['compiles'] if record else 0}",
        "",
        "| batch | shape (N, H, W) | compiles so far |",
        "|---|---|---|",
    ]
    previous = 0
    for index, entry in enumerate(record):
        if entry["compiles"] != previous:
            lines.append(f"| {index} | {entry['shape']} | {entry['compiles']} |")
            previous = entry["compiles"]
    return "\n".join(lines)
