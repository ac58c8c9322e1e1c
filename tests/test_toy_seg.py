"""Toy ADE20K set and the toy Semantic FPN config, end to end through stock mmseg/mmengine."""

import copy
import filecmp
import functools
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.registry import init_default_scope

import mmrmt  # noqa: F401  (registers RMT with mmseg, as the configs' custom_imports do)
from mmrmt.toy_data.ade import TOY_ADE_CLASSES, TOY_ADE_PALETTE, make_toy_ade

TOY_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "seg" / "fpn_rmt_t_toy.py"
SMALL_SPLITS = {"training": (6, 0), "validation": (3, 1)}
SPLIT_DIRS = (
    "images/training",
    "images/validation",
    "annotations/training",
    "annotations/validation",
)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Run the tiny models single-threaded: on shared CPUs, OpenMP threads waiting for each
    other cost far more than they gain on 128-pixel inputs (a 2-iteration run took 7x longer)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("toy_ade"))
    make_toy_ade(root, splits=SMALL_SPLITS)
    return root


@functools.lru_cache(maxsize=None)
def _parse_toy_config() -> Config:
    return Config.fromfile(str(TOY_CONFIG))


def load_toy_config() -> Config:
    """A fresh copy of the toy config (parsing its ``mmseg::`` bases is slow, so it is cached)."""
    return copy.deepcopy(_parse_toy_config())


def toy_config(root: str) -> Config:
    """The toy config reading ``root``, with single-process loaders."""
    cfg = load_toy_config()
    for loader in ("train_dataloader", "val_dataloader", "test_dataloader"):
        cfg[loader].dataset.data_root = root
        cfg[loader].num_workers = 0
        cfg[loader].persistent_workers = False
    return cfg


def test_toy_set_has_ade_layout_with_matching_image_and_label_sizes(toy_root):
    for split, (count, _) in SMALL_SPLITS.items():
        images = sorted(os.listdir(os.path.join(toy_root, "images", split)))
        labels = sorted(os.listdir(os.path.join(toy_root, "annotations", split)))
        assert len(images) == count
        assert [name[:-4] for name in images] == [name[:-4] for name in labels]
        assert all(name.endswith(".jpg") for name in images)
        for image_name, label_name in zip(images, labels):
            image = cv2.imread(os.path.join(toy_root, "images", split, image_name))
            label = cv2.imread(os.path.join(toy_root, "annotations", split, label_name), -1)
            assert label.dtype == np.uint8 and label.ndim == 2
            assert image.shape == (*label.shape, 3)
            assert set(np.unique(label)) <= set(range(len(TOY_ADE_CLASSES) + 1))


def test_toy_training_split_shows_every_class_and_some_ignored_pixels(toy_root):
    folder = os.path.join(toy_root, "annotations", "training")
    values = np.concatenate(
        [cv2.imread(os.path.join(folder, name), -1).ravel() for name in os.listdir(folder)]
    )
    counts = np.bincount(values, minlength=len(TOY_ADE_CLASSES) + 1)
    assert (counts[1:] > 0).all()
    assert 0 < counts[0] < 0.05 * counts.sum()  # a little "other", as in ADE20K


def test_toy_set_is_deterministic(toy_root, tmp_path):
    again = str(tmp_path / "again")
    make_toy_ade(again, splits=SMALL_SPLITS)
    for folder in SPLIT_DIRS:
        names = sorted(os.listdir(os.path.join(toy_root, folder)))
        match, mismatch, errors = filecmp.cmpfiles(
            os.path.join(toy_root, folder), os.path.join(again, folder), names, shallow=False
        )
        assert (mismatch, errors) == ([], [])


def test_make_toy_ade_skips_a_finished_set_unless_forced(tmp_path):
    root = str(tmp_path / "toy")
    splits = {"training": (2, 0), "validation": (1, 1)}
    assert "wrote" in make_toy_ade(root, splits=splits)
    label = os.path.join(root, "annotations", "training", "ADE_train_00000001.png")
    os.utime(label, (0, 0))
    assert "already" in make_toy_ade(root, splits=splits)
    assert os.path.getmtime(label) == 0
    assert "wrote" in make_toy_ade(root, force=True, splits=splits)
    assert os.path.getmtime(label) > 0


def test_toy_config_names_the_generators_classes():
    cfg = load_toy_config()
    metainfo = cfg.train_dataloader.dataset.metainfo
    assert tuple(metainfo.classes) == TOY_ADE_CLASSES
    assert [tuple(colour) for colour in metainfo.palette] == list(TOY_ADE_PALETTE)
    assert cfg.model.decode_head.num_classes == len(TOY_ADE_CLASSES)
    assert cfg.model.backbone.init_cfg is None


def test_stock_ade20k_dataset_reduces_zero_label(toy_root):
    from mmseg.registry import DATASETS

    cfg = toy_config(toy_root)
    init_default_scope("mmseg")
    dataset = DATASETS.build(cfg.val_dataloader.dataset)
    assert type(dataset).__name__ == "ADE20KDataset"
    assert len(dataset) == SMALL_SPLITS["validation"][0]
    # The toy classes are ADE20K's first five: the label map keeps them and ignores the rest.
    assert [dataset.label_map[i] for i in range(len(TOY_ADE_CLASSES))] == [0, 1, 2, 3, 4]
    assert {dataset.label_map[i] for i in range(len(TOY_ADE_CLASSES), 150)} == {255}
    sample = dataset[0]
    raw = cv2.imread(dataset.get_data_info(0)["seg_map_path"], -1).astype(np.int64)
    loaded = sample["data_samples"].gt_sem_seg.data[0].numpy()
    assert np.array_equal(loaded, np.where(raw == 0, 255, raw - 1))


def test_toy_config_trains_and_evaluates_with_iou_metric(toy_root, tmp_path):
    from mmengine.runner import Runner

    cfg = toy_config(toy_root)
    cfg.work_dir = str(tmp_path / "work")
    cfg.train_dataloader.batch_size = 2
    cfg.train_cfg.max_iters = 2
    cfg.train_cfg.val_interval = 2
    cfg.default_hooks.checkpoint.interval = 2
    cfg.default_hooks.logger.interval = 1
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.val()
    assert runner.iter == 2
    assert {"aAcc", "mIoU", "mAcc"} <= set(metrics)
    assert 0.0 <= metrics["mIoU"] <= 100.0
    assert os.path.isfile(os.path.join(cfg.work_dir, "iter_2.pth"))
    assert type(runner.val_evaluator.metrics[0]).__name__ == "IoUMetric"


@pytest.mark.parametrize(
    "test_cfg",
    [dict(mode="whole"), dict(mode="slide", crop_size=(64, 64), stride=(40, 40))],
    ids=["whole", "slide"],
)
def test_inference_returns_a_map_of_the_image_size(test_cfg):
    from mmseg.apis import inference_model, init_model

    cfg = load_toy_config()
    cfg.model.test_cfg = test_cfg
    model = init_model(cfg, device="cpu")
    image = np.random.default_rng(0).integers(0, 256, (75, 109, 3), dtype=np.uint8)
    result = inference_model(model, image)
    prediction = result.pred_sem_seg.data
    assert tuple(prediction.shape) == (1, 75, 109)
    assert int(prediction.max()) < len(TOY_ADE_CLASSES)
    assert tuple(result.seg_logits.data.shape) == (len(TOY_ADE_CLASSES), 75, 109)


def test_slide_inference_with_one_window_equals_whole_image_inference():
    from mmseg.apis import init_model

    model = init_model(load_toy_config(), device="cpu")
    image = torch.randn(1, 3, 61, 93)
    metas = [dict(img_shape=(61, 93), ori_shape=(61, 93), pad_shape=(61, 93))]
    with torch.no_grad():
        model.test_cfg = ConfigDict(mode="whole")
        whole = model.inference(image, metas)
        # One 64x96 window covers the whole 61x93 image.
        model.test_cfg = ConfigDict(mode="slide", crop_size=(64, 96), stride=(32, 32))
        slide = model.inference(image, metas)
    assert whole.shape == (1, len(TOY_ADE_CLASSES), 61, 93)
    torch.testing.assert_close(slide, whole)
