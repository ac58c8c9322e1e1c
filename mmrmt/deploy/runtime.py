"""Evaluate an exported file the way ``tools/test.py`` evaluates a checkpoint.

:class:`OnnxRuntimeModel` is an mmengine model: the config's data preprocessor prepares each
batch, onnxruntime runs the exported graphs, and the config's own model, built without weights,
turns their outputs into predictions with mmdet's and mmseg's code (a dense head's
``predict_by_feat``: decoding and NMS; a two-stage detector's ``roi_head.predict``: RoIAlign,
box regression, NMS and mask pasting, with its learned heads answered by their graphs; a
segmentor's resizing and ``postprocess_result``). :func:`onnx_test_config` puts it in place of
a config's model, so the config's test loop, dataset and metrics evaluate it unchanged.
"""

import os
from typing import Dict, List, Optional, Tuple, Union

from mmengine.config import Config
from mmengine.model import BaseModel
from mmengine.registry import MODELS
from torch import Tensor

from ..errors import InvalidValueError
from .graphs import SEGMENTOR, SINGLE_STAGE, describe_kind, model_kind
from .session import OnnxGraph


class PartForward:
    """A module's ``forward`` answered by its exported graph (one tensor, or a tuple)."""

    def __init__(self, graph: OnnxGraph) -> None:
        self.graph = graph

    def __call__(self, *inputs: Tensor) -> Union[Tensor, Tuple[Tensor, ...]]:
        outputs = self.graph(*inputs)
        return outputs[0] if len(outputs) == 1 else tuple(outputs)


def head_outputs(groups: Dict[str, List[Tensor]], head: str) -> Dict[str, List[Tensor]]:
    """The ``predict_by_feat`` arguments of ``head`` among the grouped graph outputs."""
    prefix = f"{head}."
    return {name[len(prefix) :]: value for name, value in groups.items() if name.startswith(prefix)}


@MODELS.register_module()
class OnnxRuntimeModel(BaseModel):
    """A detector or segmentor whose learned layers run in onnxruntime.

    Args:
        onnx_file (str): The main file written by ``tools/export_onnx.py`` (its further
            graphs are found beside it).
        model (dict): The config's model, built (in the config's scope) for its data
            preprocessor and post-processing; its weights are never used.
        threads (int | None): onnxruntime's intra-op threads; None takes PyTorch's.
        data_preprocessor (dict | None): A config's top-level ``data_preprocessor``, which
            mmengine's Runner passes on; ``model`` takes it unless it has its own, as the
            Runner would do for ``model``.
        init_cfg (dict | None): Unused; mmengine models take it.
    """

    def __init__(
        self,
        onnx_file: str,
        model: dict,
        threads: Optional[int] = None,
        data_preprocessor: Optional[dict] = None,
        init_cfg: Optional[dict] = None,
    ) -> None:
        model = dict(model)
        if data_preprocessor is not None:
            model.setdefault("data_preprocessor", data_preprocessor)
        network = MODELS.build(model)
        super().__init__(data_preprocessor=network.data_preprocessor, init_cfg=init_cfg)
        self.network = network.eval()
        self.kind = model_kind(network, "the config")
        if not os.path.isfile(onnx_file):
            raise FileNotFoundError(
                f"ONNX file not found: {onnx_file}. Write one with tools/export_onnx.py"
            )
        self.graph = OnnxGraph(onnx_file, threads)
        if self.graph.kind != self.kind:
            holds = describe_kind(self.graph.kind) if self.graph.kind else "no mmrmt export"
            raise InvalidValueError(
                f"{onnx_file} holds a {holds}, the config a {describe_kind(self.kind)}: "
                "export the config's model with tools/export_onnx.py (without --backbone-only)"
            )
        folder = os.path.dirname(onnx_file)
        for part, name in self.graph.parts.items():
            path = os.path.join(folder, name)
            if not os.path.isfile(path):
                raise FileNotFoundError(f"{onnx_file} needs {path} (its {part}), which is missing")
            self.network.get_submodule(part).forward = PartForward(OnnxGraph(path, threads))
        if self.kind == SEGMENTOR:
            self.network.encode_decode = self._encode_decode

    def forward(self, inputs: Tensor, data_samples: Optional[list] = None, mode: str = "predict"):
        """Predict (the only mode an exported model has).

        Args:
            inputs (Tensor): (B, 3, H, W) preprocessed images.
            data_samples (list): mmdet's / mmseg's data samples of the batch.
            mode (str): ``'predict'``.

        Returns:
            list: The data samples with their predictions.
        """
        if mode != "predict":
            raise RuntimeError(f"an ONNX model only predicts; mode {mode!r} is not available")
        if self.kind == SEGMENTOR:
            return self.network.predict(inputs, data_samples)
        return self.predict_detections(inputs, data_samples)

    def predict_detections(self, inputs: Tensor, data_samples: list) -> list:
        """mmdet's single- and two-stage ``predict``, with the graph in place of the network.

        Args:
            inputs (Tensor): (B, 3, H, W) preprocessed images.
            data_samples (list[DetDataSample]): The batch's samples.

        Returns:
            list[DetDataSample]: The samples with ``pred_instances``.
        """
        metas = [sample.metainfo for sample in data_samples]
        groups = self.graph.grouped(inputs)
        network = self.network
        if self.kind == SINGLE_STAGE:
            results = network.bbox_head.predict_by_feat(
                **head_outputs(groups, "bbox_head"), batch_img_metas=metas, rescale=True
            )
        else:
            proposals = network.rpn_head.predict_by_feat(
                **head_outputs(groups, "rpn_head"), batch_img_metas=metas, rescale=False
            )
            feats = tuple(groups["feats"])
            results = network.roi_head.predict(feats, proposals, data_samples, rescale=True)
        return network.add_pred_to_datasample(data_samples, results)

    def _encode_decode(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """mmseg's ``encode_decode``: the graph's logits, resized by the decode head."""
        (seg_logits,) = self.graph(inputs)
        return self.network.decode_head.predict_by_feat(seg_logits, batch_img_metas)


def onnx_test_config(cfg: Config, onnx_file: str, threads: Optional[int] = None) -> Config:
    """Make ``cfg`` test ``onnx_file`` instead of a checkpoint: its model becomes an
    :class:`OnnxRuntimeModel` around the config's model; dataset, pipeline and metrics stay.

    Args:
        cfg (Config): A detector or segmentor config (changed in place and returned).
        onnx_file (str): The exported main file.
        threads (int | None): onnxruntime's threads; None takes PyTorch's.

    Returns:
        Config: ``cfg``.
    """
    cfg.model = dict(type="OnnxRuntimeModel", onnx_file=onnx_file, model=cfg.model, threads=threads)
    cfg.load_from = None
    return cfg
