"""The compile counter of ``tools/count_compiles.py``: the batch shapes a config's pipeline makes,
and the compiles counted over them."""

import pytest
from torch import nn

from mmrmt.analysis.compile_counts import batch_shapes, count_compiles, pad_to, report
from mmrmt.utils import load_config
from tests.helpers import REPO, load_tool

CONFIG_1X = str(REPO / "configs/det/maskrcnn_rmt_t_coco.py")
CONFIG_3X = str(REPO / "configs/det/maskrcnn_rmt_s_coco_3x_ms.py")


def test_pad_to_rounds_up_to_the_divisor():
    assert [pad_to(size, 32) for size in (1, 32, 33, 1067)] == [32, 32, 64, 1088]


def test_single_scale_shapes_follow_mmdets_resize_and_padding():
    # Resize to fit (1333, 800) keeping the ratio: 480x640 -> 800x1067, padded to 32 -> 800x1088.
    shapes = batch_shapes(load_config(CONFIG_1X), 6, photo_sizes=[(480, 640), (640, 480)])
    assert set(shapes) == {(2, 800, 1088), (2, 1088, 800)}  # never a mixed 1088x1088 batch


def test_multi_scale_shapes_vary_within_the_recipe():
    shapes = batch_shapes(load_config(CONFIG_3X), 30)
    assert len(set(shapes)) > 10
    for batch, height, width in shapes:
        assert batch == 2 and height % 32 == 0 and width % 32 == 0
        assert 480 <= min(height, width) <= 832 and max(height, width) <= 1344
    assert batch_shapes(load_config(CONFIG_3X), 30) == shapes  # seeded


def test_counter_records_the_batches_that_compiled():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.AdaptiveAvgPool2d(1))
    shapes = [(2, 64, 96), (2, 96, 64), (2, 72, 88), (2, 64, 96), (1, 64, 96)]
    record = count_compiles(model, shapes)
    # Static shapes first, then symbolic H and W; a new batch size makes the batch symbolic too.
    assert [entry["compiles"] for entry in record] == [1, 2, 2, 2, 3]
    text = report(record)
    assert text.startswith("batches: 5, distinct shapes: 4, compiles: 3")
    assert text.splitlines()[-3:] == [
        "| 0 | (2, 64, 96) | 1 |",
        "| 1 | (2, 96, 64) | 2 |",
        "| 4 | (1, 64, 96) | 3 |",
    ]


@pytest.mark.parametrize("argv", [["--batches", "0"], ["--last-batch", "-1"]])
def test_count_compiles_tool_refuses_bad_counts(argv, capsys):
    assert load_tool("count_compiles").main([CONFIG_3X, *argv]) == 1
    assert "--batches must be at least 1" in capsys.readouterr().err


def test_segmentation_crops_pad_to_the_preprocessors_size():
    cfg = load_config(str(REPO / "configs/seg/upernet_rmt_s_ade20k.py"))
    batch = cfg.train_dataloader.batch_size
    assert set(batch_shapes(cfg, 4)) == {(batch, 512, 512)}
