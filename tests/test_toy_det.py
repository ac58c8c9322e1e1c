"""The toy COCO set and the toy Mask R-CNN config: valid COCO data that mmdet reads and evaluates,
and a few iterations of training and evaluation through mmengine's Runner."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from pycocotools import mask as mask_utils

from mmrmt.toy_data.coco import (
    CATEGORIES,
    ToyCocoSpec,
    make_toy_coco,
    place_shapes,
    shape_mask,
    visible_masks,
)

REPO = Path(__file__).resolve().parents[1]
TOY_CONFIG = REPO / "configs" / "det" / "maskrcnn_rmt_t_toy.py"
SMALL = ToyCocoSpec(num_train=8, num_val=4)


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("toy_coco")
    make_toy_coco(str(root), spec=SMALL)
    return root


def load_split(root: Path, split: str) -> dict:
    return json.loads((root / "annotations" / f"instances_{split}.json").read_text())


def file_digests(root: Path) -> dict:
    return {
        str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# -- the data -----------------------------------------------------------------------------------
def test_toy_coco_has_the_shape_categories_and_the_requested_image_counts(toy_root):
    for split, count in (("train", SMALL.num_train), ("val", SMALL.num_val)):
        content = load_split(toy_root, split)
        assert [c["name"] for c in content["categories"]] == list(CATEGORIES)
        assert len(content["images"]) == count
        assert len(list((toy_root / split).glob("*.png"))) == count


def test_every_image_has_one_to_max_objects_of_varied_size(toy_root):
    content = load_split(toy_root, "train")
    per_image = np.bincount([a["image_id"] for a in content["annotations"]])[1:]
    assert per_image.min() >= 1 and per_image.max() <= SMALL.max_objects
    areas = [a["area"] for a in content["annotations"]]
    assert max(areas) > 4 * min(areas)


def test_boxes_and_areas_are_those_of_the_rle_masks(toy_root):
    for split in ("train", "val"):
        content = load_split(toy_root, split)
        sizes = {im["id"]: (im["height"], im["width"]) for im in content["images"]}
        for ann in content["annotations"]:
            mask = mask_utils.decode(ann["segmentation"])
            assert mask.shape == sizes[ann["image_id"]]
            ys, xs = np.nonzero(mask)
            assert ann["area"] == mask.sum() > 0
            expected = [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
            assert ann["bbox"] == [float(v) for v in expected]
            assert ann["iscrowd"] == 0


def test_masks_of_an_image_are_disjoint_visible_parts(toy_root):
    content = load_split(toy_root, "train")
    coverage = {}
    for ann in content["annotations"]:
        mask = mask_utils.decode(ann["segmentation"]).astype(int)
        coverage[ann["image_id"]] = coverage.get(ann["image_id"], 0) + mask
    assert all(total.max() == 1 for total in coverage.values())


def test_visible_masks_let_later_shapes_hide_earlier_ones():
    back = np.zeros((4, 6), np.uint8)
    back[:, :4] = 1
    front = np.zeros((4, 6), np.uint8)
    front[:, 2:] = 1
    hidden_back, whole_front = visible_masks([back, front])
    assert hidden_back[:, :2].all() and not hidden_back[:, 2:].any()
    np.testing.assert_array_equal(whole_front, front)


def test_some_shapes_are_partly_hidden_but_none_mostly():
    spec = ToyCocoSpec()
    rng = np.random.default_rng(0)
    occluded = 0
    for _ in range(30):
        full = [mask for _, mask in place_shapes(rng, spec)]
        for whole, seen in zip(full, visible_masks(full)):
            assert seen.sum() >= spec.min_visible * whole.sum()
            occluded += seen.sum() < whole.sum()
    assert occluded > 0


def test_an_unknown_shape_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="category must be one of .*'hexagon'"):
        shape_mask(np.random.default_rng(0), "hexagon", 32, 10)


def test_train_and_val_images_differ(toy_root):
    train = {hashlib.md5(p.read_bytes()).hexdigest() for p in (toy_root / "train").glob("*.png")}
    val = {hashlib.md5(p.read_bytes()).hexdigest() for p in (toy_root / "val").glob("*.png")}
    assert not train & val


def test_generation_is_deterministic(toy_root, tmp_path):
    make_toy_coco(str(tmp_path / "again"), spec=SMALL)
    assert file_digests(tmp_path / "again") == file_digests(toy_root)


def test_generation_is_skipped_when_present_and_redone_with_force(tmp_path):
    root = tmp_path / "coco"
    spec = ToyCocoSpec(num_train=2, num_val=1)
    assert "wrote" in make_toy_coco(str(root), spec=spec)
    ann_file = root / "annotations" / "instances_train.json"
    ann_file.write_text(ann_file.read_text())  # same content, new modification time
    stamp = ann_file.stat().st_mtime_ns
    assert "kept" in make_toy_coco(str(root), spec=spec)
    assert ann_file.stat().st_mtime_ns == stamp
    assert "wrote" in make_toy_coco(str(root), force=True, spec=spec)
    assert "wrote" in make_toy_coco(str(root), spec=ToyCocoSpec(num_train=3, num_val=1))
    assert len(load_split(root, "train")["images"]) == 3


def test_an_incomplete_set_is_regenerated(tmp_path):
    root = tmp_path / "coco"
    spec = ToyCocoSpec(num_train=2, num_val=1)
    make_toy_coco(str(root), spec=spec)
    (root / "val" / "000001.png").unlink()
    assert "wrote" in make_toy_coco(str(root), spec=spec)
    assert (root / "val" / "000001.png").is_file()


# -- mmdet reads it -----------------------------------------------------------------------------
def toy_config(root: Path, work_dir: Path) -> Config:
    """The toy config pointed at ``root``, shrunk to two iterations and four val images."""
    cfg = Config.fromfile(str(TOY_CONFIG))
    data_root = f"{root}/"
    for loader in ("train_dataloader", "val_dataloader", "test_dataloader"):
        cfg[loader].update(num_workers=0, persistent_workers=False, batch_size=4)
        cfg[loader].dataset.data_root = data_root
    for evaluator in ("val_evaluator", "test_evaluator"):
        cfg[evaluator].ann_file = f"{data_root}annotations/instances_val.json"
    cfg.train_cfg.update(max_epochs=1, val_interval=10)
    # Two iterations leave every score under the usual 0.05 threshold: keep all boxes so that
    # CocoMetric has detections to match.
    cfg.model.test_cfg.rcnn.score_thr = 0.0
    cfg.default_hooks.logger.interval = 1
    cfg.work_dir = str(work_dir)
    cfg.log_level = "WARNING"
    return cfg


def test_coco_dataset_reads_boxes_labels_and_masks(toy_root, tmp_path):
    from mmdet.registry import DATASETS

    init_default_scope("mmdet")
    cfg = toy_config(toy_root, tmp_path)
    dataset = DATASETS.build(cfg.val_dataloader.dataset)  # test pipeline: no random flip
    assert dataset.metainfo["classes"] == CATEGORIES
    content = load_split(toy_root, "val")
    expected = sorted(
        (a["category_id"] - 1, a["area"], a["bbox"][0], a["bbox"][1], a["bbox"][2], a["bbox"][3])
        for a in content["annotations"]
        if a["image_id"] == 1
    )
    sample = dataset[0]["data_samples"]
    assert sample.img_path.endswith("000001.png")
    instances = sample.gt_instances
    boxes = instances.bboxes.tensor.tolist()
    masks = instances.masks.to_ndarray()
    read = sorted(
        (label, float(mask.sum()), x0, y0, x1 - x0, y1 - y0)
        for label, mask, (x0, y0, x1, y1) in zip(instances.labels.tolist(), masks, boxes)
    )
    assert read == expected


def test_toy_config_trains_and_evaluates_bbox_and_segm_through_the_runner(toy_root, tmp_path):
    cfg = toy_config(toy_root, tmp_path)
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == SMALL.num_train // 4
    assert (tmp_path / "epoch_1.pth").is_file()
    metrics = runner.test()
    for key in ("coco/bbox_mAP", "coco/segm_mAP"):
        assert 0.0 <= metrics[key] <= 1.0
