"""Parameters and FLOPs of a detection or segmentation model at a given input size.

Used by ``tools/get_flops.py CONFIG [--shape 1280 800]``.

Counter: mmengine's ``FlopAnalyzer`` (fvcore's jit-trace counter), one FLOP = one multiply-add,
the unit of the paper's table. It counts convolutions, linear layers, every matrix product
(``matmul``/``bmm``/``einsum``: the attention's Q K^T and weights @ V), norm layers and
upsampling; element-wise ops (softmax, GELU, additions, the decay-mask addition) are not
counted, as in fvcore. The backbone runs its step-by-step ``'reference'`` attention so the count
follows the paper's arithmetic (the ``'fast'`` path calls a fused attention kernel the counter
does not see).

The input is one random image of ``--shape H W`` (default 1280 x 800, the paper's detection
setting; segmentation used 512 x 512). Two-stage detectors run their RoI heads on the RPN's
proposals (at most ``test_cfg.rpn.max_per_img``, as mmdet's own ``get_flops``); the RoI counts
are printed.

The last line gives the count under the paper's convention (the authors' mmdet 2.x
``get_flops``): mmcv's module-hook counter, which misses the attention's matrix products, and
mmdet 2.x's ``forward_dummy``, which runs mask heads on 100 RoIs. It reproduces the paper's
table, e.g. Mask R-CNN RMT-S 262G, RetinaNet RMT-T 199G at 1280 x 800.
"""

import inspect
from functools import partial
from typing import Dict, Tuple

import torch
from mmengine.analysis import FlopAnalyzer, parameter_count
from mmengine.config import Config
from mmengine.structures import BaseDataElement
from torch import nn

from ..models import set_attention_impl
from ..utils.model_loading import load_model

#: mmdet 2.x's ``forward_dummy`` (the authors' FLOP counts) runs the mask heads on 100 RoIs.
PAPER_MASK_ROIS = 100


def build_counting_model(cfg: Config) -> nn.Module:
    """The config's model for counting (:func:`mmrmt.utils.load_model`: eval mode, BN instead of
    SyncBN, seeded random weights) with the step-by-step ``'reference'`` MaSA, whose matrix
    products the counter sees."""
    model = load_model(cfg)
    set_attention_impl(model, "reference")
    return model


def data_sample(scope: str, height: int, width: int) -> BaseDataElement:
    """The meta information a forward in ``'tensor'`` mode reads for one unscaled image."""
    if scope == "mmdet":
        from mmdet.structures import DetDataSample as Sample
    else:
        from mmseg.structures import SegDataSample as Sample
    size = (height, width)
    return Sample(
        metainfo=dict(
            img_shape=size,
            ori_shape=size,
            pad_shape=size,
            batch_input_shape=size,
            scale_factor=(1.0, 1.0),
        )
    )


def record_roi_counts(model: nn.Module) -> Dict[str, int]:
    """Hook the RoI extractors to record how many RoIs the box and mask heads pool."""
    counts: Dict[str, int] = {}
    for name, module in model.named_modules():
        for kind in ("bbox", "mask"):
            if name.split(".")[-1] == f"{kind}_roi_extractor" or (
                name.split(".")[-2:-1] == [f"{kind}_roi_extractor"]  # cascade: one per stage
            ):

                def hook(_, args, kind=kind):
                    counts.setdefault(kind, int(args[1].shape[0]))

                module.register_forward_pre_hook(hook)
    return counts


def needs_data_samples(model: nn.Module) -> bool:
    """Whether the segmentor's decode head reads the data samples in its forward (mmseg's
    Mask2Former and MaskFormer heads), which mmseg's ``'tensor'`` mode does not pass them."""
    head = getattr(model, "decode_head", None)
    return head is not None and "batch_data_samples" in inspect.signature(head.forward).parameters


def decode_with_samples(model: nn.Module, data_samples: list, inputs: torch.Tensor):
    """``'tensor'`` mode of such a segmentor: the decode head's outputs on the image features."""
    return model.decode_head(model.extract_feat(inputs), data_samples)


def count(
    model: nn.Module, scope: str, height: int, width: int
) -> Tuple[FlopAnalyzer, Dict[str, int]]:
    """Trace one forward of a random (1, 3, H, W) image and return the analyzer and RoI counts."""
    image = (torch.rand(3, height, width) * 255).to(torch.uint8)
    batch = dict(inputs=[image], data_samples=[data_sample(scope, height, width)])
    batch = model.data_preprocessor(batch, False)
    roi_counts = record_roi_counts(model)
    if needs_data_samples(model):
        model.forward = partial(decode_with_samples, model, batch["data_samples"])
    else:
        model.forward = partial(model.forward, data_samples=batch["data_samples"], mode="tensor")
    analyzer = FlopAnalyzer(model, inputs=(batch["inputs"],))
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    analyzer.total()  # runs the trace (and the RoI hooks)
    return analyzer, roi_counts


def attention_flops(analyzer: FlopAnalyzer) -> int:
    """Multiply-adds of the backbone's matrix products (Q K^T and weights @ V)."""
    if "backbone" not in analyzer.by_module():
        return 0
    by_operator = analyzer.by_operator("backbone")
    return sum(by_operator.get(op, 0) for op in ("matmul", "bmm", "einsum"))


def paper_convention_flops(analyzer: FlopAnalyzer, roi_counts: Dict[str, int]) -> int:
    """FLOPs as the paper's table counts them (the authors' mmdet 2.x ``get_flops``).

    mmcv's counter adds up hooked modules, so it misses the attention's matrix products, and
    mmdet 2.x's ``forward_dummy`` runs the mask heads on the first 100 RoIs only (mmdet 3.x's
    cascade forward runs them on every proposal; mask-head cost is linear in the RoIs).
    """
    flops = analyzer.total() - attention_flops(analyzer)
    mask_rois = roi_counts.get("mask", 0)
    if mask_rois > PAPER_MASK_ROIS:
        mask_head = sum(v for k, v in analyzer.by_module().items() if k.endswith("mask_head"))
        flops -= mask_head * (mask_rois - PAPER_MASK_ROIS) // mask_rois
    return flops


def giga(value: int) -> str:
    """Format a count in units of 1e9."""
    return f"{value / 1e9:.2f}G"


def top_level(counter: Dict[str, int]) -> Dict[str, int]:
    """Keep the entries of the model's direct children (``backbone``, ``neck``, heads)."""
    return {name: value for name, value in counter.items() if name and "." not in name and value}


def report(
    model: nn.Module, analyzer: FlopAnalyzer, roi_counts: Dict[str, int], size: Tuple[int, int]
) -> str:
    """Format params and FLOPs: totals, per top-level module and operator, the paper's count."""
    params = parameter_count(model)
    lines = [
        f"input: 1 x 3 x {size[0]} x {size[1]}",
        f"params: {params[''] / 1e6:.2f}M  ("
        + ", ".join(f"{k} {v / 1e6:.2f}M" for k, v in top_level(params).items())
        + ")",
        f"FLOPs (multiply-adds, every counted op): {giga(analyzer.total())}  ("
        + ", ".join(f"{k} {giga(v)}" for k, v in top_level(analyzer.by_module()).items())
        + ")",
        "by operator: "
        + ", ".join(f"{op} {giga(v)}" for op, v in analyzer.by_operator().most_common()),
        "backbone attention matrix products (Q K^T, weights @ V): "
        + giga(attention_flops(analyzer)),
    ]
    if roi_counts:
        lines.append(
            "RoIs: " + ", ".join(f"{kind} heads {rois}" for kind, rois in roi_counts.items())
        )
    masks = f", mask heads on {PAPER_MASK_ROIS} RoIs" if "mask" in roi_counts else ""
    lines.append(
        f"paper's convention: {giga(paper_convention_flops(analyzer, roi_counts))} "
        f"(without the attention matrix products{masks})"
    )
    uncounted = sorted(analyzer.unsupported_ops())
    if uncounted:
        lines.append("not counted (element-wise or indexing ops): " + ", ".join(uncounted))
    return "\n".join(lines)
