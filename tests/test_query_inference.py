"""mmdet's ``DetInferencer`` and mmseg's ``MMSegInferencer`` run the DINO and Mask2Former toy
configs from a checkpoint on a scikit-image photograph (mmseg's Mask2Former builds mmdet's
modules inside mmseg's scope: mmseg #2914, #3361)."""

from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config

import mmrmt  # noqa: F401
from mmrmt.visualization.photos import load_image
from tests.helpers import REPO, TINY_ARCH, build_initialised

TOY_CONFIGS = {
    "dino": "configs/det/dino_4scale_rmt_t_toy.py",
    "mask2former": "configs/det/mask2former_rmt_t_toy.py",
    "mask2former_seg": "configs/seg/mask2former_rmt_t_toy.py",
}


def tiny_toy(kind: str, folder: Path) -> tuple:
    """A toy config with tests' tiny RMT, and a checkpoint of its (seeded) initial weights."""
    cfg = Config.fromfile(str(REPO / TOY_CONFIGS[kind]))
    widths = [TINY_ARCH["embed_dims"][i] for i in cfg.model.backbone.out_indices]
    part = "neck" if kind == "dino" else "panoptic_head" if kind == "mask2former" else "decode_head"
    config = folder / f"{kind}_tiny.py"
    config.write_text(
        f"_base_ = {str(REPO / TOY_CONFIGS[kind])!r}\n"
        f"model = dict(backbone=dict(arch=dict(_delete_=True, **{TINY_ARCH!r})), "
        f"{part}=dict(in_channels={widths!r}))\n"
    )
    model = build_initialised(Config.fromfile(str(config)))
    classes = cfg.train_dataloader.dataset.metainfo.classes
    checkpoint = folder / f"{kind}_tiny.pth"
    torch.save(
        dict(state_dict=model.state_dict(), meta=dict(dataset_meta=dict(classes=classes))),
        checkpoint,
    )
    return str(config), str(checkpoint), len(classes)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return load_image("coffee")  # 400 x 600 RGB


@pytest.mark.parametrize("kind", ["dino", "mask2former"])
def test_det_inferencer_runs_the_toy_checkpoint_on_a_photo(kind, photo, tmp_path):
    from mmdet.apis import DetInferencer

    config, checkpoint, num_classes = tiny_toy(kind, tmp_path)
    inferencer = DetInferencer(model=config, weights=checkpoint, device="cpu", show_progress=False)
    result = inferencer(photo[..., ::-1].copy(), return_datasamples=True)
    [sample] = result["predictions"]
    instances = sample.pred_instances
    assert len(instances) > 0 and instances.labels.max() < num_classes
    height, width = photo.shape[:2]
    boxes = instances.bboxes
    assert boxes[:, 0::2].min() >= 0 and boxes[:, 0::2].max() <= width
    assert boxes[:, 1::2].min() >= 0 and boxes[:, 1::2].max() <= height
    if kind == "mask2former":
        assert tuple(instances.masks.shape[1:]) == (height, width)


def test_mmseg_inferencer_runs_the_toy_mask2former_checkpoint_on_a_photo(photo, tmp_path):
    from mmseg.apis import MMSegInferencer

    config, checkpoint, num_classes = tiny_toy("mask2former_seg", tmp_path)
    inferencer = MMSegInferencer(model=config, weights=checkpoint, device="cpu")
    sample = inferencer(photo[..., ::-1].copy(), return_datasamples=True)
    classes = sample.pred_sem_seg.data
    assert tuple(classes.shape[-2:]) == photo.shape[:2]
    assert classes.min() >= 0 and classes.max() < num_classes
