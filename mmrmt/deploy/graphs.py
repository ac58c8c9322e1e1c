"""What an ONNX export holds for each kind of model: its graphs, their inputs and outputs.

Every graph takes what the model's data preprocessor hands the model (normalised, padded float
images) and returns raw tensors: everything after them (anchors, box decoding, NMS, RoIAlign,
mask pasting, resizing to the image) stays mmdet's and mmseg's own code, run by
:class:`~mmrmt.deploy.runtime.OnnxRuntimeModel` on the graphs' outputs.

==================  ==========================================  =================================
kind                main graph, ``images`` (B, 3, H, W) to       further graphs (own files)
==================  ==========================================  =================================
backbone            ``feats.i``                                 -
segmentor           ``seg_logits.0``, the decode head's          -
                    logits (mmseg's ``mode='tensor'``)
single-stage        ``bbox_head.<name>.i`` per level, named as  -
detector            the head's ``predict_by_feat`` arguments
                    (``cls_scores``, ``bbox_preds``, ...)
two-stage           ``feats.i`` (the neck) and                  the learned RoI heads, one file
detector            ``rpn_head.<name>.i``                       each: ``roi_feats`` (N, C, h, w)
                                                                to ``cls_score``/``bbox_pred``
                                                                or ``mask_pred``
==================  ==========================================  =================================

A two-stage detector's RoI stage needs the proposals, which come from NMS: its heads are
exported on their own, and the runtime runs mmdet's ``roi_head.predict`` (RoIAlign from mmcv)
with the heads' forward answered by onnxruntime.
"""

import inspect
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import torch
from mmdet.models.detectors import SingleStageDetector, TwoStageDetector
from mmdet.models.roi_heads import CascadeRoIHead, StandardRoIHead
from mmseg.models.segmentors import CascadeEncoderDecoder, EncoderDecoder
from torch import Tensor, nn
from torch.export import Dim

from ..errors import InvalidValueError

BACKBONE = "backbone"
SEGMENTOR = "segmentor"
SINGLE_STAGE = "single_stage_detector"
TWO_STAGE = "two_stage_detector"
#: The kinds of model an ONNX file can hold.
KINDS = (BACKBONE, SEGMENTOR, SINGLE_STAGE, TWO_STAGE)

#: RoI heads whose learned parts are called as ``bbox_head(roi_feats)`` / ``mask_head(...)``
#: from mmdet's own ``predict``, so they can be answered by exported graphs.
SUPPORTED_ROI_HEADS = (StandardRoIHead, CascadeRoIHead)

#: Smallest image side the dynamic graphs are traced for: RMT's stride-32 map then has two rows
#: or more, which the tracer would otherwise ask to specialise.
MIN_IMAGE_SIDE = 64

#: RoIs in the example inputs of the RoI head graphs.
EXAMPLE_ROIS = 4


def describe_kind(kind: str) -> str:
    """``'two_stage_detector'`` -> ``'two-stage detector'``."""
    return kind.replace("_stage", "-stage").replace("_", " ")


def model_kind(model: nn.Module, source: str) -> str:
    """Return which of :data:`KINDS` (but ``'backbone'``) ``model`` is.

    Args:
        model (nn.Module): A built detector or segmentor.
        source (str): Where it comes from (the config path), for the error message.

    Returns:
        str: ``'segmentor'``, ``'single_stage_detector'`` or ``'two_stage_detector'``.

    Raises:
        InvalidValueError: another kind of model.
    """
    if isinstance(model, EncoderDecoder) and not isinstance(model, CascadeEncoderDecoder):
        return SEGMENTOR
    if isinstance(model, SingleStageDetector):
        return SINGLE_STAGE
    if (
        isinstance(model, TwoStageDetector)
        and model.with_rpn
        and type(model.roi_head) in SUPPORTED_ROI_HEADS
    ):
        return TWO_STAGE
    raise InvalidValueError(
        f"{source} builds a {type(model).__name__}; ONNX export supports mmseg EncoderDecoder "
        "segmentors and mmdet single-stage detectors or two-stage ones with an RPN and a "
        "StandardRoIHead or CascadeRoIHead. --backbone-only exports the backbone of any config"
    )


@dataclass
class ExportGraph:
    """One graph to export, with the example it is traced on.

    Attributes:
        part (str): ``''`` for the main graph, else the dotted path of the module it replaces
            (``'roi_head.bbox_head'``, ``'roi_head.mask_head.2'``).
        module (nn.Module): Computes the graph; returns a tuple of tensors.
        inputs (tuple[Tensor]): Example inputs.
        input_names (list[str]): One per input.
        output_names (list[str]): One per output.
        dynamic_shapes (tuple[dict] | None): ``torch.export`` dims per input; None: static.
        second_inputs (tuple[Tensor] | None): Inputs of another size, never traced, for the
            parity check of a dynamic graph.
    """

    part: str
    module: nn.Module
    inputs: Tuple[Tensor, ...]
    input_names: List[str]
    output_names: List[str]
    dynamic_shapes: Optional[Tuple[Dict[int, Dim], ...]]
    second_inputs: Optional[Tuple[Tensor, ...]] = None


class BackboneGraph(nn.Module):
    """images (B, 3, H, W) -> the backbone's feature maps."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, images: Tensor) -> Tuple[Tensor, ...]:
        return tuple(self.backbone(images))


class SegmentorGraph(nn.Module):
    """images -> the decode head's logits (B, classes, H / 4, W / 4), before any resizing."""

    def __init__(self, segmentor: nn.Module) -> None:
        super().__init__()
        self.segmentor = segmentor

    def forward(self, images: Tensor) -> Tuple[Tensor, ...]:
        return (self.segmentor._forward(images),)


class DenseHeadGraph(nn.Module):
    """images -> optionally the neck's features, then a dense head's outputs, level by level.

    Args:
        detector (nn.Module): An mmdet detector.
        head (str): ``'bbox_head'`` (single-stage) or ``'rpn_head'`` (two-stage).
        with_features (bool): Also return the features (the RoI stage reads them).
    """

    def __init__(self, detector: nn.Module, head: str, with_features: bool) -> None:
        super().__init__()
        self.detector = detector
        self.head = head
        self.with_features = with_features

    def forward(self, images: Tensor) -> Tuple[Tensor, ...]:
        return tuple(tensor for _, tensor in self.named_outputs(images))

    def named_outputs(self, images: Tensor) -> List[Tuple[str, Tensor]]:
        """The outputs with their names: ``feats.i``, then ``<head>.<argument>.i``.

        ``<argument>`` is the name of the head's ``predict_by_feat`` argument that takes them
        (``cls_scores``, ``bbox_preds``, ...), so the runtime can hand them back by name.
        """
        feats = self.detector.extract_feat(images)
        named = [(f"feats.{index}", feat) for index, feat in enumerate(feats)]
        named = named if self.with_features else []
        head = getattr(self.detector, self.head)
        arguments = inspect.signature(head.predict_by_feat).parameters
        for argument, per_level in zip(arguments, head(feats)):
            named += [(f"{self.head}.{argument}.{i}", out) for i, out in enumerate(per_level)]
        return named


class RoIHeadGraph(nn.Module):
    """roi_feats (N, C, h, w) -> a bbox head's ``(cls_score, bbox_pred)`` or ``(mask_pred,)``."""

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.head = head

    def forward(self, roi_feats: Tensor) -> Tuple[Tensor, ...]:
        outputs = self.head(roi_feats)
        return tuple(outputs) if isinstance(outputs, (tuple, list)) else (outputs,)


def image_dims(dynamic: bool) -> Optional[Tuple[Dict[int, Dim], ...]]:
    """Dynamic batch, height and width of an ``images`` input (None: static)."""
    if not dynamic:
        return None
    return (
        {
            0: Dim("batch", min=1),
            2: Dim("height", min=MIN_IMAGE_SIDE),
            3: Dim("width", min=MIN_IMAGE_SIDE),
        },
    )


def other_size(images: Tensor) -> Tensor:
    """Images of another batch and size than ``images``, odd in both sides."""
    height, width = images.shape[-2:]
    generator = torch.Generator().manual_seed(1)
    shape = (1, images.shape[1], max(MIN_IMAGE_SIDE + 1, height - 31), width + 33)
    return torch.randn(shape, generator=generator)


def main_graph(model: nn.Module, kind: str, images: Tensor, dynamic: bool) -> ExportGraph:
    """The graph from images to the raw outputs of ``model`` (see the module docstring).

    Args:
        model (nn.Module): A backbone (``kind='backbone'``), segmentor or detector, in eval mode.
        kind (str): One of :data:`KINDS`.
        images (Tensor): (B, 3, H, W) example images.
        dynamic (bool): Dynamic batch, height and width.

    Returns:
        ExportGraph: The graph and its examples.
    """
    if kind == BACKBONE:
        module: nn.Module = BackboneGraph(model)
    elif kind == SEGMENTOR:
        module = SegmentorGraph(model)
    else:
        head = "bbox_head" if kind == SINGLE_STAGE else "rpn_head"
        module = DenseHeadGraph(model, head, with_features=kind == TWO_STAGE)
    module.eval()
    with torch.no_grad():
        if isinstance(module, DenseHeadGraph):
            names = [name for name, _ in module.named_outputs(images)]
        else:
            prefix = "feats" if kind == BACKBONE else "seg_logits"
            names = [f"{prefix}.{index}" for index in range(len(module(images)))]
    return ExportGraph(
        part="",
        module=module,
        inputs=(images,),
        input_names=["images"],
        output_names=names,
        dynamic_shapes=image_dims(dynamic),
        second_inputs=(other_size(images),) if dynamic else None,
    )


def _per_stage(modules: nn.Module, path: str) -> List[Tuple[str, nn.Module]]:
    if isinstance(modules, nn.ModuleList):
        return [(f"{path}.{stage}", module) for stage, module in enumerate(modules)]
    return [(path, modules)]


def _roi_inputs(extractor: nn.Module, rois: int) -> Tensor:
    """Random RoI features of the shape ``extractor`` gives: (rois, C, h, w)."""
    height, width = extractor.roi_layers[0].output_size
    generator = torch.Generator().manual_seed(2)
    return torch.randn((rois, extractor.out_channels, height, width), generator=generator)


def roi_head_graphs(model: nn.Module, dynamic: bool) -> List[ExportGraph]:
    """The learned heads of a two-stage detector's RoI stage, one graph each.

    Args:
        model (nn.Module): A two-stage detector with a :data:`SUPPORTED_ROI_HEADS` RoI head.
        dynamic (bool): Dynamic number of RoIs.

    Returns:
        list[ExportGraph]: The bbox head(s), then the mask head(s) (one per cascade stage).
    """
    roi_head = model.roi_head
    bbox_outputs = ["cls_score", "bbox_pred"]
    roles = [("bbox_head", roi_head.bbox_head, roi_head.bbox_roi_extractor, bbox_outputs)]
    if roi_head.with_mask:
        roles.append(("mask_head", roi_head.mask_head, roi_head.mask_roi_extractor, ["mask_pred"]))
    graphs = []
    for role, heads, extractors, output_names in roles:
        for stage, (part, head) in enumerate(_per_stage(heads, role)):
            shared = not isinstance(extractors, nn.ModuleList)
            extractor = extractors if shared else extractors[stage]
            module = RoIHeadGraph(head).eval()
            inputs = (_roi_inputs(extractor, EXAMPLE_ROIS),)
            with torch.no_grad():
                outputs = module(*inputs)
            graphs.append(
                ExportGraph(
                    part=f"roi_head.{part}",
                    module=module,
                    inputs=inputs,
                    input_names=["roi_feats"],
                    output_names=output_names[: len(outputs)],
                    dynamic_shapes=({0: Dim("rois", min=1)},) if dynamic else None,
                    second_inputs=(_roi_inputs(extractor, EXAMPLE_ROIS + 3),) if dynamic else None,
                )
            )
    return graphs


def export_graphs(model: nn.Module, kind: str, images: Tensor, dynamic: bool) -> List[ExportGraph]:
    """Every graph of ``model``, in eval mode: the main one, then a two-stage detector's RoI
    heads."""
    graphs = [main_graph(model, kind, images, dynamic)]
    if kind == TWO_STAGE:
        graphs += roi_head_graphs(model, dynamic)
    return graphs
