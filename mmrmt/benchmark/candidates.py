"""What the benchmark compares: RMT with fast and reference MaSA, and Swin-T, on one input.

``--arch`` gives bare backbones (``RMT-<arch> fast``/``reference`` sharing one model object, and
one mmdet Swin-T backbone as the baseline of every arch); ``--config`` gives whole models (the
config's model with either MaSA, and the same config with a Swin-T backbone).
"""

import argparse
import copy
import logging
import os
import sys
from dataclasses import dataclass
from typing import Callable, List, Sequence, Tuple

import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from torch import nn

from ..baselines import SWIN_T, SWIN_T_DIMS, swin_t_kwargs
from ..errors import InvalidValueError
from ..models import RMT, resolve_arch, set_attention_impl
from ..models.layers import RetentionPosition
from ..models.layers.cpu_kernels import set_cpu_kernels
from ..utils import build_model, config_scope, load_config
from ..utils.config import config_dicts
from .steps import Step, backbone_step, config_inputs, config_step

#: ``--impls``: RMT's MaSA implementations, ``'fast'`` without ``mmrmt._ext``'s depthwise-conv
#: kernel (PyTorch's own conv backward: the before/after of that kernel), and the Swin-T baseline.
IMPLS = ("fast", "reference", "flex", "fast-noext", "swin")
#: Candidates that run an RMT, and the MaSA implementation each sets.
RMT_IMPLS = {"fast": "fast", "reference": "reference", "flex": "flex", "fast-noext": "fast"}
#: The default ``--impls`` on the CPU: there ``'flex'`` runs eagerly and unfused, forward only
#: (a check path, not a kernel), so it is timed only when asked for.
CPU_DEFAULT_IMPLS = ("fast", "reference", "swin")
#: The default ``--impls`` on CUDA, where the depthwise-conv kernel never runs.
CUDA_DEFAULT_IMPLS = ("fast", "reference", "flex", "swin")
#: Group of the Swin-T backbone, the baseline of every ``--arch`` group.
SWIN_BACKBONE_GROUP = "backbones"
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}

#: Builds a candidate's model and its step function on the candidate's input.
Build = Callable[[], Tuple[nn.Module, Step]]


def _no_preparation(model: nn.Module) -> None:
    """Nothing to switch before a step (the model is not shared with another candidate)."""


@dataclass
class Candidate:
    """One model to time.

    Attributes:
        name (str): Row label, e.g. ``'RMT-S fast'``.
        group (str): Candidates compared with each other (one arch or config; the Swin-T
            backbone has a group of its own and is the baseline of every arch).
        impl (str): ``'fast'``, ``'reference'``, ``'flex'`` or ``'swin'``.
        build (Build): Returns ``(model, step)``: ``step(train)`` runs one step on the model
            and returns the loss (train) or the outputs (inference).
        prepare (Callable): Called before each step of this candidate (e.g. switches the MaSA
            implementation of a model shared with another candidate).
    """

    name: str
    group: str
    impl: str
    build: Build
    prepare: Callable[[nn.Module], None] = _no_preparation

    @property
    def backbone(self) -> bool:
        """Whether this is a bare backbone (compared with the Swin-T backbone)."""
        return self.group.endswith(" backbone") or self.group == SWIN_BACKBONE_GROUP


def all_candidates(args: argparse.Namespace) -> List[Candidate]:
    """Candidates of every ``--arch`` and ``--config``, in command-line order.

    Nothing is built yet: each candidate's ``build`` does that.

    Args:
        args (argparse.Namespace): The benchmark's options.

    Returns:
        list[Candidate]: Each arch's fast/reference pair, then Swin-T (if asked for and
        importable), then each config's fast/reference/Swin-T candidates.
    """
    candidates = []
    for arch in args.arch:
        candidates += arch_candidates(arch, args)
    if args.arch and "swin" in args.impls and swin_available():
        candidates.append(swin_candidate(args))
    for path in args.config:
        candidates += config_candidates(path, args)
    return candidates


def arch_candidates(arch: str, args: argparse.Namespace) -> List[Candidate]:
    """RMT-<arch> fast and reference, timing one shared backbone (same weights).

    Args:
        arch (str): An RMT preset name (``'t'``, ``'s'``, ``'b'``, ``'l'``).
        args (argparse.Namespace): The benchmark's options (``impls``, input, device, seed).

    Returns:
        list[Candidate]: One candidate per RMT implementation in ``args.impls``.
    """

    def build_rmt() -> nn.Module:
        torch.manual_seed(args.seed)
        model = RMT(arch=arch)
        model.init_weights()
        return _on_device(model, args)

    rmt = _with_images(_shared(build_rmt), args)
    return [
        Candidate(
            name=f"RMT-{arch.upper()} {impl}",
            group=f"RMT-{arch.upper()} backbone",
            impl=impl,
            build=rmt,
            prepare=_switch_attention(impl),
        )
        for impl in args.impls
        if impl in RMT_IMPLS
    ]


def swin_candidate(args: argparse.Namespace) -> Candidate:
    """mmdet's Swin-T backbone, the baseline of every ``--arch`` row."""

    def build_swin() -> nn.Module:
        # mmdet is imported only when Swin-T is asked for (see swin_available).
        from mmdet.models.backbones import SwinTransformer

        torch.manual_seed(args.seed)
        model = SwinTransformer(**swin_t_kwargs())
        model.init_weights()
        return _on_device(model, args)

    return Candidate("Swin-T (mmdet)", SWIN_BACKBONE_GROUP, "swin", _with_images(build_swin, args))


def swin_available() -> bool:
    """Whether mmdet's Swin imports (it needs mmdet and mmcv's compiled ops); warns if not."""
    try:
        from mmdet.models.backbones import SwinTransformer  # noqa: F401
    except ImportError as error:
        print(f"Swin-T skipped: mmdet's SwinTransformer does not import ({error})", file=sys.stderr)
        return False
    return True


def swin_config(cfg: Config, out_indices: Sequence[int], rmt_dims: List[int]) -> Config:
    """The same config with a Swin-T backbone, the layers that read its outputs adjusted.

    A layer reads the backbone when its ``in_channels`` is the list of RMT's output channels
    (an FPN) or, with an ``in_index``, RMT's channels at that index (a seg head reading one
    stage); those become Swin-T's. Other ``in_channels`` (e.g. an RPN head after the neck) stay.

    Args:
        cfg (Config): A config whose ``model.backbone`` is RMT; not modified.
        out_indices (Sequence[int]): The stages the backbone returns.
        rmt_dims (list[int]): RMT's channels of those stages.

    Returns:
        Config: A copy with ``model.backbone`` = :data:`~mmrmt.baselines.SWIN_T` (same
        ``out_indices``).
    """
    cfg = copy.deepcopy(cfg)
    swin_dims = [SWIN_T_DIMS[index] for index in out_indices]
    cfg.model.backbone = dict(SWIN_T, out_indices=tuple(out_indices))

    # The backbone's own in_channels (its stem's) are not a neck's or a head's.
    for node in config_dicts(cfg.model, skip_keys=("backbone",)):
        channels = node.get("in_channels")
        if isinstance(channels, (list, tuple)) and list(channels) == rmt_dims:
            node["in_channels"] = list(swin_dims)
        elif isinstance(channels, int) and isinstance(node.get("in_index"), int):
            if channels == rmt_dims[node["in_index"]]:
                node["in_channels"] = swin_dims[node["in_index"]]
    return cfg


def config_candidates(path: str, args: argparse.Namespace) -> List[Candidate]:
    """The config's model with fast and reference MaSA, and with a Swin-T backbone.

    Args:
        path (str): An mmdet or mmseg config whose backbone is RMT.
        args (argparse.Namespace): The benchmark's options.

    Returns:
        list[Candidate]: One candidate per ``args.impls``, all in the group named after the
        config file; the fast and reference candidates share one model (same weights).

    Raises:
        InvalidValueError: ``--dtype`` is not fp32, or the config's backbone is not RMT.
    """
    if args.dtype != "fp32":
        raise InvalidValueError(
            "--dtype bf16/fp16 applies to --arch backbones only, not to --config"
        )
    cfg = load_config(path, args.cfg_options)
    scope = config_scope(cfg)
    backbone = cfg.model.backbone
    if backbone.get("type") != "RMT":
        raise InvalidValueError(
            f"{path}: model.backbone.type is {backbone.get('type')!r}, not 'RMT'"
        )
    # init_weights() logs every parameter at INFO level; keep the report readable.
    MMLogger.get_instance("mmengine").setLevel(logging.WARNING)
    # Random weights: benchmarking needs no checkpoint.
    backbone.init_cfg = None
    out_indices = list(backbone.get("out_indices", (0, 1, 2, 3)))
    dims = resolve_arch(backbone.get("arch", "t"))["embed_dims"]
    packed = config_inputs(scope, cfg, args.size, args.batch)
    group = os.path.splitext(os.path.basename(path))[0]

    def builder(model_cfg: dict) -> Callable[[], nn.Module]:
        def build() -> nn.Module:
            torch.manual_seed(args.seed)
            model = build_model(cfg, model_cfg)
            model.init_weights()
            return _on_device(model, args)

        return build

    rmt = _shared(builder(cfg.model))
    swin_model = swin_config(cfg, out_indices, [dims[i] for i in out_indices]).model
    builders = {impl: rmt for impl in RMT_IMPLS}
    builders["swin"] = builder(swin_model)

    def with_step(build: Callable[[], nn.Module]) -> Build:
        def build_with_step() -> Tuple[nn.Module, Step]:
            model = build()
            return model, config_step(model, _packed_on_device(packed, args))

        return build_with_step

    names = {impl: f"{group} {impl}" for impl in RMT_IMPLS}
    return [
        Candidate(
            name=names.get(impl, f"{group} with Swin-T"),
            group=group,
            impl=impl,
            build=with_step(builders[impl]),
            prepare=_switch_attention(impl) if impl != "swin" else _no_preparation,
        )
        for impl in args.impls
    ]


def _switch_attention(impl: str) -> Callable[[nn.Module], None]:
    """A ``prepare`` that sets every MaSA of the (shared) model to ``impl``'s implementation,
    and ``mmrmt._ext``'s kernels on (off for ``'fast-noext'``)."""

    def prepare(model: nn.Module) -> None:
        set_attention_impl(model, RMT_IMPLS[impl])
        set_cpu_kernels(impl != "fast-noext")

    return prepare


def _shared(build: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
    """Build once: the fast and reference candidates time one model object (same weights)."""
    cache: List[nn.Module] = []

    def get() -> nn.Module:
        if not cache:
            cache.append(build())
        return cache[0]

    return get


def _on_device(model: nn.Module, args: argparse.Namespace) -> nn.Module:
    """Apply ``--full-mask-limit`` and move the model to ``--device`` and ``--dtype``."""
    if args.full_mask_limit is not None:
        for module in model.modules():
            if isinstance(module, RetentionPosition):
                module.full_mask_limit = int(args.full_mask_limit * 2**20)
    return model.to(device=args.device, dtype=DTYPES[args.dtype])


def _images(args: argparse.Namespace) -> torch.Tensor:
    """``--batch`` random images of ``--size``, the same for every candidate (``--seed``)."""
    generator = torch.Generator().manual_seed(args.seed)
    images = torch.randn(args.batch, 3, *args.size, generator=generator)
    return images.to(device=args.device, dtype=DTYPES[args.dtype])


def _with_images(build: Callable[[], nn.Module], args: argparse.Namespace) -> Build:
    """A backbone's ``build``: the model and its step on :func:`_images`."""

    def build_with_step() -> Tuple[nn.Module, Step]:
        model = build()
        return model, backbone_step(model, _images(args))

    return build_with_step


def _packed_on_device(packed: dict, args: argparse.Namespace) -> dict:
    """A copy of a :func:`config_inputs` batch on ``--device``."""
    packed = copy.deepcopy(packed)
    packed["inputs"] = [image.to(args.device) for image in packed["inputs"]]
    packed["data_samples"] = [sample.to(args.device) for sample in packed["data_samples"]]
    return packed
