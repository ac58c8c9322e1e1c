"""RoI pooling in float32 for bf16 training (``Fp32SingleRoIExtractor``) and the config swap
``--amp --amp-dtype bf16`` makes.

The CPU has the same gap as the GPU: mmcv 2.1.0's RoIAlign has no bf16 kernel on either, so the
failure and the fix both show here."""

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData

from mmrmt.models.roi_extractors import Fp32SingleRoIExtractor
from mmrmt.utils.train_options import FP32_ROI_MODULE, pool_rois_in_fp32
from tests.helpers import REPO

STRIDES = [4, 8, 16, 32]
EXTRACTOR = dict(
    roi_layer=dict(type="RoIAlign", output_size=7, sampling_ratio=0),
    out_channels=8,
    featmap_strides=STRIDES,
)


@pytest.fixture(autouse=True)
def _mmdet_scope():
    """Build in mmdet's registries, whichever scope earlier tests left as the default."""
    with DefaultScope.overwrite_default_scope("mmdet"):
        yield


def pyramid(dtype: torch.dtype, size=(96, 128), batch=2):
    """Features of a 4-level pyramid for a batch of ``size`` images."""
    torch.manual_seed(0)
    return tuple(
        torch.randn(batch, 8, size[0] // s, size[1] // s).to(dtype).requires_grad_()
        for s in STRIDES
    )


def rois():
    """RoIs of every level (small to large), both images, with edges bf16 cannot hold."""
    return torch.tensor(
        [
            [0, 3.3, 5.1, 20.7, 30.9],
            [1, 10.2, 2.6, 70.3, 60.1],
            [0, 1.4, 1.7, 120.6, 90.2],
            [1, 30.9, 20.3, 126.1, 94.8],
            [0, 0.6, 0.3, 127.7, 95.5],
        ]
    )


def build(type_name: str):
    return MODELS.build(dict(type=type_name, **EXTRACTOR))


def test_stock_roi_extractor_fails_on_bf16_features():
    with pytest.raises(RuntimeError, match="BFloat16"):
        build("SingleRoIExtractor")(pyramid(torch.bfloat16), rois())


def test_fp32_features_pool_exactly_as_mmdet_does():
    feats = pyramid(torch.float32)
    got = build("Fp32SingleRoIExtractor")(feats, rois())
    want = build("SingleRoIExtractor")(feats, rois())
    assert torch.equal(got, want)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_features_pool_in_fp32_values_and_gradients(dtype):
    half = pyramid(dtype)
    upcast = tuple(level.detach().float().requires_grad_() for level in half)
    got = build("Fp32SingleRoIExtractor")(half, rois())
    want = build("SingleRoIExtractor")(upcast, rois())
    assert got.dtype == dtype
    assert torch.equal(got, want.to(dtype))  # pooled in fp32, rounded once at the end
    weights = torch.randn(got.shape).to(dtype)
    (got * weights).sum().backward()
    (want * weights.float()).sum().backward()
    for level_half, level_fp32 in zip(half, upcast):
        assert level_half.grad.dtype == dtype
        assert torch.equal(level_half.grad, level_fp32.grad.to(dtype))


def test_roi_coordinates_are_not_rounded_to_bf16():
    feats = pyramid(torch.bfloat16)
    got = build("Fp32SingleRoIExtractor")(feats, rois())
    upcast = tuple(level.detach().float() for level in feats)
    rounded_rois = rois().bfloat16().float()  # what casting the RoIs to the features' dtype does
    rounded = build("SingleRoIExtractor")(upcast, rounded_rois).bfloat16()
    assert not torch.equal(got, rounded)


def test_roi_head_loss_under_bf16_autocast_is_finite_and_close_to_fp32():
    """Mask R-CNN's RoI head (bbox and mask branches) on bf16 pyramid features, as on a GPU."""
    cfg = Config.fromfile(str(REPO / "configs/det/maskrcnn_rmt_t_toy.py"))
    assert pool_rois_in_fp32(cfg) == 2
    torch.manual_seed(0)
    head = MODELS.build(
        dict(
            **cfg.model.roi_head,
            train_cfg=cfg.model.train_cfg.rcnn,
            test_cfg=cfg.model.test_cfg.rcnn,
        )
    )
    assert isinstance(head.bbox_roi_extractor, Fp32SingleRoIExtractor)
    assert isinstance(head.mask_roi_extractor, Fp32SingleRoIExtractor)
    channels = cfg.model.roi_head.bbox_roi_extractor.out_channels
    size = (96, 128)
    feats = tuple(torch.randn(1, channels, size[0] // s, size[1] // s) for s in STRIDES)
    sample = DetDataSample(metainfo=dict(img_shape=size, pad_shape=size, batch_input_shape=size))
    gt = InstanceData(bboxes=torch.tensor([[10.0, 12.0, 70.0, 80.0]]), labels=torch.tensor([0]))
    mask = torch.zeros(1, *size, dtype=torch.uint8)
    mask[0, 12:80, 10:70] = 1
    gt.masks = BitmapMasks(mask.numpy(), *size)
    sample.gt_instances = gt
    proposals = torch.tensor([[8.0, 10.0, 72.0, 78.0], [30.0, 5.0, 120.0, 90.0]])

    def losses(autocast: bool):
        torch.manual_seed(1)  # the same sampled RoIs
        # Under autocast the neck's convolutions hand the head bf16 features.
        inputs = tuple(level.bfloat16() for level in feats) if autocast else feats
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            return head.loss(inputs, [InstanceData(bboxes=proposals.clone())], [sample])

    fp32, bf16 = losses(False), losses(True)
    for name in ("loss_cls", "loss_bbox", "loss_mask"):
        value = torch.as_tensor(bf16[name]).float()
        assert torch.isfinite(value).all(), name
        assert torch.allclose(value, torch.as_tensor(fp32[name]).float(), rtol=0.05, atol=0.02)
    head.zero_grad()
    sum(torch.as_tensor(value).sum() for name, value in bf16.items() if "loss" in name).backward()
    grads = [p.grad for p in head.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(grad).all() for grad in grads)


def test_pool_rois_in_fp32_swaps_every_extractor_and_records_the_import():
    cfg = Config.fromfile(str(REPO / "configs/det/cascade_maskrcnn_rmt_s_coco_3x_ms.py"))
    assert pool_rois_in_fp32(cfg) == 2  # the cascade stages share one bbox extractor
    assert cfg.model.roi_head.bbox_roi_extractor.type == "Fp32SingleRoIExtractor"
    assert cfg.model.roi_head.mask_roi_extractor.type == "Fp32SingleRoIExtractor"
    assert cfg.custom_imports.imports == ["mmrmt", FP32_ROI_MODULE]
    assert pool_rois_in_fp32(cfg) == 0 and cfg.custom_imports.imports.count(FP32_ROI_MODULE) == 1


def test_models_without_roi_heads_are_left_alone():
    cfg = Config.fromfile(str(REPO / "configs/det/retinanet_rmt_t_coco.py"))
    before = cfg.pretty_text
    assert pool_rois_in_fp32(cfg) == 0
    assert cfg.pretty_text == before


def test_swapped_config_round_trips_through_its_dump(tmp_path):
    cfg = Config.fromfile(str(REPO / "configs/det/maskrcnn_rmt_t_toy.py"))
    pool_rois_in_fp32(cfg)
    dumped = tmp_path / "dumped.py"
    cfg.dump(str(dumped))
    again = Config.fromfile(str(dumped))
    assert again.model.roi_head.mask_roi_extractor.type == "Fp32SingleRoIExtractor"
    assert FP32_ROI_MODULE in again.custom_imports.imports
