"""One step of a model on a fixed input: forward (under ``no_grad``), or forward plus backward.

A step function takes ``train`` and returns the outputs (inference) or the loss (training); the
model's ``train()``/``eval()`` state and clearing the gradients are the caller's business
(:class:`mmrmt.benchmark.timing.CandidateSteps`), so those stay outside the timed region.
"""

import copy
from typing import Callable, Sequence

import torch
from mmengine.config import Config
from torch import nn

#: ``step(train)``: one step; returns the loss (train) or the outputs (inference).
Step = Callable[[bool], object]


def backbone_step(model: nn.Module, images: torch.Tensor) -> Step:
    """One forward, and a backward of the sum of the outputs' means when training.

    Args:
        model (nn.Module): A backbone returning a sequence of feature maps.
        images (Tensor): (B, 3, H, W), on the model's device and dtype.

    Returns:
        Step: The step function.
    """

    def step(train: bool) -> object:
        if not train:
            with torch.no_grad():
                return model(images)
        outs = model(images)
        loss = sum(out.float().mean() for out in outs)
        loss.backward()
        return loss

    return step


def config_inputs(scope: str, cfg: Config, size: Sequence[int], batch: int) -> dict:
    """A packed batch of random images with random annotations for ``mode='loss'/'predict'``.

    Args:
        scope (str): ``'mmdet'`` (boxes, and masks if a ROI head has a mask head) or ``'mmseg'``
            (a semantic map over ``cfg.model.decode_head.num_classes`` classes).
        cfg (Config): The model's config.
        size (Sequence[int]): Image ``(H, W)``.
        batch (int): Images in the batch.

    Returns:
        dict: ``inputs`` (list of uint8 (3, H, W) tensors) and ``data_samples``, on the CPU.
    """
    height, width = size
    # Imported here, not at the top: a config needs only its own library (mmdet or mmseg).
    if scope == "mmdet":
        from mmdet.testing import demo_mm_inputs

        roi_head = cfg.model.get("roi_head") or {}
        with_mask = any("mask_head" in stage for stage in _as_list(roi_head))
        return demo_mm_inputs(
            batch_size=batch,
            image_shapes=(3, height, width),
            num_items=[5] * batch,
            num_classes=2,  # labels drawn from [1, num_classes)
            with_mask=with_mask,
        )
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    num_classes = cfg.model.decode_head.num_classes
    inputs, samples = [], []
    for _ in range(batch):
        inputs.append(torch.randint(0, 256, (3, height, width), dtype=torch.uint8))
        sample = SegDataSample(metainfo=dict(img_shape=(height, width), ori_shape=(height, width)))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, num_classes, (1, height, width)))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def _as_list(value: object) -> list:
    # A cascade ROI head lists one dict per stage; a plain one is a single dict.
    return list(value) if isinstance(value, (list, tuple)) else [value]


def config_step(model: nn.Module, packed: dict) -> Step:
    """One ``predict``, or ``loss`` plus backward, of a detector/segmentor on a packed batch.

    The data preprocessor runs once per mode here, outside the timed step.

    Args:
        model (nn.Module): A model built from an mmdet/mmseg config.
        packed (dict): :func:`config_inputs` on the model's device.

    Returns:
        Step: The step function.
    """
    batches = {train: model.data_preprocessor(copy.deepcopy(packed), train) for train in (0, 1)}

    def step(train: bool) -> object:
        data = batches[train]
        if not train:
            with torch.no_grad():
                return model(**data, mode="predict")
        loss, _ = model.parse_losses(model(**data, mode="loss"))
        loss.backward()
        return loss

    return step
