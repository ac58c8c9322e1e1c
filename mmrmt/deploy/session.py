"""One ONNX file run by onnxruntime on the CPU, called with and returning torch tensors."""

import json
from typing import Dict, List, Optional

import torch
from torch import Tensor

from .dependencies import require

#: Metadata keys mmrmt writes into the files it exports.
KIND_KEY = "mmrmt.kind"
PARTS_KEY = "mmrmt.parts"


class OnnxGraph:
    """An onnxruntime CPU session over one file.

    Args:
        path (str): The ``.onnx`` file.
        threads (int | None): Intra-op threads; None takes PyTorch's
            (``torch.get_num_threads()``), so the two run on the same cores.
    """

    def __init__(self, path: str, threads: Optional[int] = None) -> None:
        onnxruntime = require("onnxruntime")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        # Idle onnxruntime threads otherwise spin, taking the cores from the PyTorch code that
        # runs between two calls (post-processing, or PyTorch itself in a benchmark).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = path
        self.session = onnxruntime.InferenceSession(
            path, options, providers=["CPUExecutionProvider"]
        )
        self.input_names = [node.name for node in self.session.get_inputs()]
        self.output_names = [node.name for node in self.session.get_outputs()]
        self.metadata: Dict[str, str] = self.session.get_modelmeta().custom_metadata_map

    @property
    def kind(self) -> Optional[str]:
        """What the file holds (``'backbone'``, ``'segmentor'``, ...), None if not mmrmt's."""
        return self.metadata.get(KIND_KEY)

    @property
    def parts(self) -> Dict[str, str]:
        """Further graphs of the model: module path -> file name beside this file."""
        return json.loads(self.metadata.get(PARTS_KEY, "{}"))

    def __call__(self, *inputs: Tensor) -> List[Tensor]:
        """Run the graph.

        Args:
            *inputs (Tensor): One tensor per graph input, on any device.

        Returns:
            list[Tensor]: The outputs, in the graph's order, on the first input's device.
        """
        feed = {
            name: tensor.detach().cpu().contiguous().numpy()
            for name, tensor in zip(self.input_names, inputs)
        }
        outputs = self.session.run(self.output_names, feed)
        return [torch.from_numpy(output).to(inputs[0].device) for output in outputs]

    def grouped(self, *inputs: Tensor) -> Dict[str, List[Tensor]]:
        """Run the graph and group outputs named ``<group>.<index>`` into lists, by group."""
        groups: Dict[str, List[Tensor]] = {}
        for name, output in zip(self.output_names, self(*inputs)):
            group, _ = name.rsplit(".", 1)
            groups.setdefault(group, []).append(output)
        return groups
