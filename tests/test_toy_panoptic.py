"""The toy COCO panoptic set and the panoptic Mask2Former toy config: COCO panoptic files that
mmdet's CocoPanopticDataset reads (without panopticapi), and a training step on them."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from pycocotools import mask as mask_utils

import mmrmt.datasets.panoptic  # noqa: F401  (registers LoadPanopticAnnotationsWithoutApi)
from mmrmt.toy_data import make_toy_coco, make_toy_coco_panoptic
from mmrmt.toy_data.coco import CATEGORIES, ToyCocoSpec
from mmrmt.toy_data.coco_panoptic import id_to_rgb, rgb_to_id
from tests.helpers import REPO, TINY_ARCH, build_initialised

TOY_CONFIG = REPO / "configs" / "det" / "mask2former_rmt_t_panoptic_toy.py"


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("toy_coco")
    make_toy_coco(str(root), spec=ToyCocoSpec(num_train=6, num_val=2))
    assert "panoptic" in make_toy_coco_panoptic(str(root))
    return root


def load(root: Path, kind: str, split: str = "train") -> dict:
    return json.loads((root / "annotations" / f"{kind}_{split}.json").read_text())


def segment_map(root: Path, annotation: dict, split: str = "train") -> np.ndarray:
    png = root / "annotations" / f"panoptic_{split}" / annotation["file_name"]
    return rgb_to_id(cv2.imread(str(png))[..., ::-1])


def test_segment_ids_survive_the_colour_encoding():
    ids = np.array([[0, 1, 255], [256, 65535, 65536 * 3 + 7]])
    assert np.array_equal(rgb_to_id(id_to_rgb(ids)), ids)


def test_segments_are_the_instance_masks_and_background_fills_the_rest(toy_root):
    instances, panoptic = load(toy_root, "instances"), load(toy_root, "panoptic")
    assert [c["name"] for c in panoptic["categories"]] == [*CATEGORIES, "background"]
    assert [c["isthing"] for c in panoptic["categories"]] == [1] * len(CATEGORIES) + [0]
    by_image = {}
    for ann in instances["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    for annotation in panoptic["annotations"]:
        ids = segment_map(toy_root, annotation)
        segments = annotation["segments_info"]
        assert sorted(np.unique(ids)) == [s["id"] for s in segments]  # every pixel labelled
        things = [s for s in segments if s["category_id"] <= len(CATEGORIES)]
        originals = by_image[annotation["image_id"]]
        assert [s["category_id"] for s in things] == [a["category_id"] for a in originals]
        for segment, original in zip(things, originals):
            mask = mask_utils.decode(original["segmentation"]).astype(bool)
            assert np.array_equal(ids == segment["id"], mask)  # the masks are disjoint
            assert segment["area"] == original["area"]
        assert segments[-1]["category_id"] == len(CATEGORIES) + 1
        assert segments[-1]["area"] == int((ids == segments[-1]["id"]).sum())


def test_a_missing_instance_set_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="instances_train.json"):
        make_toy_coco_panoptic(str(tmp_path))


def panoptic_config(root: Path) -> Config:
    cfg = Config.fromfile(str(TOY_CONFIG))
    cfg.model.backbone.arch = TINY_ARCH
    cfg.model.panoptic_head.in_channels = TINY_ARCH["embed_dims"]
    cfg.train_dataloader.dataset.data_root = str(root) + "/"
    return cfg


def test_mmdets_panoptic_dataset_reads_it_without_panopticapi(toy_root):
    cfg = panoptic_config(toy_root)
    init_default_scope("mmdet")
    from mmdet.registry import DATASETS

    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    panoptic = load(toy_root, "panoptic")
    assert len(dataset) == len(panoptic["images"])
    sample = dataset[0]["data_samples"]
    annotation = next(
        a for a in panoptic["annotations"] if a["image_id"] == sample.metainfo["img_id"]
    )
    things = [s for s in annotation["segments_info"] if s["category_id"] <= len(CATEGORIES)]
    assert sample.gt_instances.labels.tolist() == [s["category_id"] - 1 for s in things]
    assert set(sample.gt_sem_seg.sem_seg.unique().tolist()) <= {0, 1, 2, 3, 255}
    assert (sample.gt_sem_seg.sem_seg == len(CATEGORIES)).any()  # the stuff class


def test_panoptic_mask2former_takes_a_training_step(toy_root):
    cfg = panoptic_config(toy_root)
    model = build_initialised(cfg).train()
    from mmdet.registry import DATASETS

    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    batch = pseudo_collate([dataset[index] for index in range(2)])
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    losses = model.train_step(batch, optim_wrapper)
    assert "loss_mask" in losses and "loss_dice" in losses
    assert all(torch.isfinite(value) for value in losses.values())
    moved = [name for name, p in model.named_parameters() if not torch.equal(p, before[name])]
    assert any(name.startswith("backbone.") for name in moved)
    assert any(name.startswith("panoptic_head.") for name in moved)
