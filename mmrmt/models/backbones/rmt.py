"""RMT backbone (Fan et al., "RMT: Retentive Networks Meet Vision Transformers", CVPR 2024).

Parameter names follow the authors' release, so their ImageNet and detection checkpoints load
with only the renames in :mod:`mmrmt.checkpoint.convert`.
"""

from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_
from mmengine.registry import MODELS
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from ...arch_zoo import ARCH_SETTINGS, resolve_arch
from ...checkpoint.loading import load_backbone_checkpoint
from ..layers.decay_attention import decay_kernel_runs
from ..layers.depthwise_conv import DepthwiseConv2d
from ..layers.fused_ops import fused_linear, onednn_fusion_runs
from ..layers.position import FULL_MASK_LIMIT, RetentionPosition, RetentionTables
from ..layers.retention import ManhattanSelfAttention, check_attention_impl

__all__ = ["ARCH_SETTINGS", "RMT", "resolve_arch", "set_attention_impl"]

#: Implementations that read their stage's cached position tables; the others get fresh
#: tables every forward (the reference recomputes everything, as a baseline should).
CACHED_TABLE_IMPLS = ("fast", "flex")


# mmcv.cnn imports mmengine's Runner (its AlexNet loads checkpoints through it): imported when an
# RMT is built, so that `import mmrmt`, which only registers, does not load it.
def norm_layer(norm_cfg: dict, channels: int) -> nn.Module:
    """mmcv's ``build_norm_layer(norm_cfg, channels)`` layer (BN, SyncBN, GN, LN...)."""
    from mmcv.cnn import build_norm_layer

    return build_norm_layer(norm_cfg, channels)[1]


def drop_path_layer(drop_prob: float) -> nn.Module:
    """mmcv's ``DropPath(drop_prob)``, or ``nn.Identity`` when ``drop_prob`` is 0."""
    from mmcv.cnn.bricks import DropPath

    return DropPath(drop_prob) if drop_prob > 0 else nn.Identity()


def add_dropped_path(shortcut: Tensor, branch: Tensor, drop_prob: float) -> Tensor:
    """``shortcut + DropPath(drop_prob)(branch)`` in training, as one pass over the map.

    mmcv's ``drop_path`` draws the same per-sample mask, ``floor(keep + rand(B, 1, ...))``, but
    then divides, multiplies and adds in three passes; here the mask over ``keep`` scales the
    branch inside the add (``addcmul``), the same function up to float rounding.

    Args:
        shortcut (Tensor): (B, ...) the block's input.
        branch (Tensor): (B, ...) the residual branch's output.
        drop_prob (float): Probability of dropping a sample's branch, in (0, 1).

    Returns:
        Tensor: The shape of ``shortcut``.
    """
    keep = 1 - drop_prob
    shape = (branch.shape[0],) + (1,) * (branch.dim() - 1)
    mask = (keep + torch.rand(shape, dtype=branch.dtype, device=branch.device)).floor_()
    return torch.addcmul(shortcut, branch, mask / keep)


class ConvStem(nn.Sequential):
    """The authors' stem: four 3x3 convs (stride 2, 1, 2, 1) with BN, GELU between them.

    Kept as a flat ``Sequential`` so its keys are the authors' ``patch_embed.proj.N``.

    Args:
        in_channels (int): Image channels.
        embed_dim (int): Output channels (half of them in the first two convs).
        norm_cfg (dict): Norm layer config for the BN layers.
    """

    def __init__(self, in_channels: int, embed_dim: int, norm_cfg: dict) -> None:
        half = embed_dim // 2
        layers: List[nn.Module] = []
        plan = [
            (in_channels, half, 2),
            (half, half, 1),
            (half, embed_dim, 2),
            (embed_dim, embed_dim, 1),
        ]
        for index, (cin, cout, stride) in enumerate(plan):
            layers.append(nn.Conv2d(cin, cout, 3, stride, 1))
            layers.append(norm_layer(norm_cfg, cout))
            if index < len(plan) - 1:
                layers.append(nn.GELU())
        super().__init__(*layers)


class PatchEmbed(nn.Module):
    """Image to stride-4 tokens through :class:`ConvStem`; returns (B, H/4, W/4, C)."""

    def __init__(self, in_channels: int, embed_dim: int, norm_cfg: dict) -> None:
        super().__init__()
        self.proj = ConvStem(in_channels, embed_dim, norm_cfg)

    def forward(self, x: Tensor) -> Tensor:
        """x (Tensor): (B, C_in, H, W). Returns (B, ceil(H/4), ceil(W/4), C), contiguous."""
        # oneDNN's convs are faster on channels-last maps (the stem's forward and backward take
        # about 0.7x the time of NCHW's, docs/benchmarks.md), and the tokens come out as a
        # contiguous (B, H, W, C) tensor with no copy.
        x = x.contiguous(memory_format=torch.channels_last)
        return self.proj(x).permute(0, 2, 3, 1)


class Downsample(nn.Module):
    """3x3 stride-2 conv + BN between stages, on channels-last maps.

    Args:
        in_channels (int): Channels of the finished stage.
        out_channels (int): Channels of the next stage.
        norm_cfg (dict): Norm layer config.
    """

    def __init__(self, in_channels: int, out_channels: int, norm_cfg: dict) -> None:
        super().__init__()
        self.reduction = nn.Conv2d(in_channels, out_channels, 3, 2, 1)
        self.norm = norm_layer(norm_cfg, out_channels)

    def forward(self, x: Tensor) -> Tensor:
        """x (Tensor): (B, H, W, C). Returns (B, ceil(H/2), ceil(W/2), C_out)."""
        return self.norm(self.reduction(x.permute(0, 3, 1, 2))).permute(0, 2, 3, 1)


#: Bytes of the FFN's hidden map per band of rows at CPU inference; see
#: :meth:`ConvFFN.rows_per_chunk`.
FFN_CHUNK_BYTES = 16 * 2**20


class ConvFFN(nn.Module):
    """FFN with a 3x3 depthwise conv (and a residual around it) between its linear layers.

    Args:
        embed_dim (int): Channels in and out.
        hidden_dim (int): Hidden channels.
    """

    def __init__(self, embed_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(embed_dim, hidden_dim)
        self.dwconv = DepthwiseConv2d(hidden_dim, 3, residual=True)
        self.fc2 = nn.Linear(hidden_dim, embed_dim)

    def forward(
        self, x: Tensor, residual: Optional[Tensor] = None, output_scale: Optional[Tensor] = None
    ) -> Tensor:
        """``residual + output_scale * FFN(x)``, see :func:`~.fused_ops.fused_linear`.

        Args:
            x (Tensor): (B, H, W, C).
            residual (Tensor | None): (B, H, W, C) added to the output.
            output_scale (Tensor | None): Layer scale (C values), folded into ``fc2``.

        Returns:
            Tensor: (B, H, W, C).
        """
        height, rows = x.shape[1], self.rows_per_chunk(x)
        if rows >= height:
            return self.forward_map(x, residual, output_scale)
        bands = [
            self.forward_rows(x, start, min(start + rows, height), residual, output_scale)
            for start in range(0, height, rows)
        ]
        return torch.cat(bands, dim=1)

    def rows_per_chunk(self, x: Tensor) -> int:
        """Rows of ``x`` per chunk: all of them, unless a CPU inference's hidden map is large.

        The hidden map of an early stage at detection sizes (1 x 200 x 304 x 256 at 800 x 1216,
        59 MiB) dominates the peak memory of an inference. Where nothing needs gradients, the FFN
        runs over bands of rows whose hidden maps stay under :data:`FFN_CHUNK_BYTES` instead (the
        same function: each band recomputes the one row on either side that the 3x3 conv reads):
        RMT-S's peak at 800 x 1216 drops by about a quarter, at the same speed
        (docs/benchmarks.md).
        """
        if not onednn_fusion_runs(x, self.fc1.weight):  # also False off the CPU
            return x.shape[1]
        row_bytes = x.shape[0] * x.shape[2] * self.fc1.out_features * x.element_size()
        return max(4, FFN_CHUNK_BYTES // row_bytes - 2)

    def forward_map(
        self, x: Tensor, residual: Optional[Tensor], output_scale: Optional[Tensor]
    ) -> Tensor:
        """The FFN over the whole map: no slices, whose backward passes would fill and copy
        whole gradient maps in training, and no loop, whose range() over an exported graph's
        symbolic height would fix the graph to the traced size."""
        return self.project(self.hidden(x), residual, output_scale)

    def forward_rows(
        self,
        x: Tensor,
        start: int,
        stop: int,
        residual: Optional[Tensor],
        output_scale: Optional[Tensor],
    ) -> Tensor:
        """The FFN's output rows ``[start, stop)``, from input rows ``[start - 1, stop + 1)``."""
        low, high = max(0, start - 1), min(x.shape[1], stop + 1)
        # The rows beyond the band only feed the conv.
        hidden = self.hidden(x[:, low:high])[:, start - low : stop - low]
        if residual is not None:
            residual = residual[:, start:stop]
        return self.project(hidden, residual, output_scale)

    def hidden(self, x: Tensor) -> Tensor:
        """``h + dwconv(h)`` (as one conv) with ``h = GELU(fc1(x))``: (B, H, W, hidden).

        In CPU training the GELU runs inside the conv's kernel
        (:meth:`~.DepthwiseConv2d.forward_gelu`), which never stores its output; elsewhere it
        runs with ``fc1`` (a oneDNN post-op at CPU inference).
        """
        if self.dwconv.fuses_gelu(x):
            return self.dwconv.forward_gelu(F.linear(x, self.fc1.weight, self.fc1.bias))
        return self.dwconv(fused_linear(x, self.fc1.weight, self.fc1.bias, gelu=True))

    def project(
        self, hidden: Tensor, residual: Optional[Tensor], output_scale: Optional[Tensor]
    ) -> Tensor:
        """``residual + output_scale * fc2(hidden)``."""
        return fused_linear(
            hidden, self.fc2.weight, self.fc2.bias, residual=residual, scale=output_scale
        )


class RetentionBlock(nn.Module):
    """``x + CPE(x)``, then ``x + MaSA(LN(x))`` and ``x + FFN(LN(x))``, with optional layer scale.

    Args:
        embed_dim (int): Channels.
        num_heads (int): Attention heads.
        mlp_ratio (float): FFN hidden channels over ``embed_dim``.
        decomposed (bool): Decomposed (per-axis) or full MaSA.
        drop_path (float): Stochastic depth rate.
        layer_scale (float | None): Initial layer-scale value, or None for no layer scale.
        attn_impl (str): ``'fast'``, ``'reference'`` or ``'flex'``.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        mlp_ratio: float,
        decomposed: bool,
        drop_path: float = 0.0,
        layer_scale: Optional[float] = None,
        attn_impl: str = "fast",
    ) -> None:
        super().__init__()
        self.pos = DepthwiseConv2d(embed_dim, 3, residual=True)
        self.retention_layer_norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.retention = ManhattanSelfAttention(embed_dim, num_heads, decomposed, attn_impl)
        self.final_layer_norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.ffn = ConvFFN(embed_dim, int(mlp_ratio * embed_dim))
        self.drop_path = drop_path_layer(drop_path)
        self.layer_scale = layer_scale is not None
        if self.layer_scale:
            self.gamma_1 = nn.Parameter(torch.full((1, 1, 1, embed_dim), float(layer_scale)))
            self.gamma_2 = nn.Parameter(torch.full((1, 1, 1, embed_dim), float(layer_scale)))

    def forward(self, x: Tensor, tables: RetentionTables) -> Tensor:
        """Run the block.

        Args:
            x (Tensor): (B, H, W, C).
            tables (RetentionTables): The stage's position tables for (H, W).

        Returns:
            Tensor: (B, H, W, C).
        """
        x = self.pos(x)  # x + CPE(x), as one conv
        gamma_1 = self.gamma_1 if self.layer_scale else None
        gamma_2 = self.gamma_2 if self.layer_scale else None
        if self.training and not isinstance(self.drop_path, nn.Identity):
            drop_prob = self.drop_path.drop_prob
            attn = self.retention(self.retention_layer_norm(x), tables, output_scale=gamma_1)
            x = add_dropped_path(x, attn, drop_prob)
            ffn = self.ffn(self.final_layer_norm(x), output_scale=gamma_2)
            return add_dropped_path(x, ffn, drop_prob)
        # Without stochastic depth the shortcuts go into the output layers, which add them in
        # their kernels where they can.
        x = self.retention(self.retention_layer_norm(x), tables, x, gamma_1)
        return self.ffn(self.final_layer_norm(x), x, gamma_2)


class RetentionStage(nn.Module):
    """Blocks at one resolution sharing one set of position tables, then the downsampling.

    Args:
        embed_dim (int): Channels.
        depth (int): Number of blocks.
        num_heads (int): Heads.
        mlp_ratio (float): FFN ratio.
        decomposed (bool): Decomposed or full MaSA.
        initial_value (float): Decay formula's ``a``.
        heads_range (float): Decay formula's ``b``.
        drop_paths (list[float]): Stochastic depth rate per block.
        layer_scale (float | None): Layer-scale init, or None.
        out_channels (int | None): Next stage's channels; None for the last stage.
        norm_cfg (dict): Norm config of the downsampling BN.
        with_cp (bool): Checkpoint every block to save memory.
        attn_impl (str): ``'fast'``, ``'reference'`` or ``'flex'``; the stage owns it for all its
            blocks and picks its position-table path from it (see :attr:`attn_impl`).
    """

    def __init__(
        self,
        embed_dim: int,
        depth: int,
        num_heads: int,
        mlp_ratio: float,
        decomposed: bool,
        initial_value: float,
        heads_range: float,
        drop_paths: Sequence[float],
        layer_scale: Optional[float],
        out_channels: Optional[int],
        norm_cfg: dict,
        with_cp: bool = False,
        attn_impl: str = "fast",
    ) -> None:
        super().__init__()
        self.with_cp = with_cp
        self.rel_pos = RetentionPosition(
            embed_dim, num_heads, initial_value, heads_range, decomposed
        )
        self.blocks = nn.ModuleList(
            RetentionBlock(
                embed_dim, num_heads, mlp_ratio, decomposed, drop_paths[i], layer_scale, attn_impl
            )
            for i in range(depth)
        )
        self.downsample = (
            Downsample(embed_dim, out_channels, norm_cfg) if out_channels is not None else None
        )
        self.attn_impl = attn_impl

    @property
    def attn_impl(self) -> str:
        """The MaSA implementation of every block of the stage."""
        return self._attn_impl

    @attn_impl.setter
    def attn_impl(self, impl: str) -> None:
        for block in self.blocks:
            block.retention.impl = impl  # validates the name
        self._attn_impl = impl
        # FlexAttention makes the decay in its kernel: a full stage need not build (and cache)
        # its (heads, HW, HW) mask; should flex not run, 'fast' builds it blockwise.
        limit = 0 if impl == "flex" else FULL_MASK_LIMIT
        if self.rel_pos.full_mask_limit != limit:
            self.rel_pos.full_mask_limit = limit
            self.rel_pos.clear_cache()

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """x (Tensor): (B, H, W, C). Returns the stage output and the next stage's input."""
        _, height, width, _ = x.shape
        # The stem and the downsampling hand over channels-last maps, i.e. contiguous (B, H, W, C)
        # tensors (a no-op here); a strided input would make every LayerNorm and residual add of
        # the stage copy.
        x = x.contiguous()
        if self.attn_impl in CACHED_TABLE_IMPLS:
            # The compiled CPU kernel makes a full stage's decay itself: no mask to build.
            head_dim = self.blocks[0].retention.head_dim
            full_mask = not (self.attn_impl == "fast" and decay_kernel_runs(x.new_empty(head_dim)))
            tables = self.rel_pos(height, width, x.dtype, full_mask)
        else:
            tables = self.rel_pos.compute(height, width, x.dtype)
        for block in self.blocks:
            if self.with_cp and x.requires_grad:
                x = cp.checkpoint(block, x, tables, use_reentrant=False)
            else:
                x = block(x, tables)
        return x, (self.downsample(x) if self.downsample is not None else x)


def set_attention_impl(model: nn.Module, impl: str) -> int:
    """Switch every RMT stage (or lone MaSA module) inside ``model`` to ``impl``.

    The one place that changes implementations: the weights stay, only the computation path
    changes, so a detector or segmentor can be switched as a whole.

    Args:
        model (nn.Module): An :class:`RMT`, or any model containing one.
        impl (str): One of :data:`~mmrmt.models.layers.retention.ATTENTION_IMPLS`.

    Returns:
        int: How many MaSA modules now run ``impl`` (0: the model has no RMT).

    Raises:
        ValueError: ``impl`` is not an implementation.
    """
    check_attention_impl(impl)
    for module in model.modules():
        if isinstance(module, RetentionStage):
            module.attn_impl = impl
        elif isinstance(module, ManhattanSelfAttention):
            module.impl = impl
    return sum(isinstance(module, ManhattanSelfAttention) for module in model.modules())


@MODELS.register_module()
class RMT(BaseModule):
    """RMT backbone for dense prediction: four stages of (decomposed) MaSA blocks.

    Args:
        arch (str | dict): ``'t'|'tiny'``, ``'s'|'small'``, ``'b'|'base'``, ``'l'|'large'``, or a
            dict as described in :func:`resolve_arch`. Default: ``'t'``.
        in_channels (int): Image channels. Default: 3.
        out_indices (Sequence[int]): Stages whose (LayerNorm-ed) outputs are returned.
            Default: (0, 1, 2, 3).
        drop_path_rate (float | None): Stochastic depth rate; None takes the preset's
            (T 0.1, S 0.15, B 0.4, L 0.5). Default: None.
        layer_scale_init (float): Initial layer-scale value in stages that use it. Default: 1e-6.
        frozen_stages (int): -1 freezes nothing, 0 the stem, ``i > 0`` the stem and stages
            ``0..i-1`` with their downsampling and output norms. Default: -1.
        norm_eval (bool): Keep BN layers in eval mode while training. Default: False.
        with_cp (bool): Gradient checkpointing per block. Default: False.
        norm_cfg (dict): Config of the BN layers of the stem and downsampling
            (``dict(type='SyncBN')`` for multi-GPU). Default: ``dict(type='BN')``.
        attn_impl (str): ``'fast'``, ``'reference'`` or ``'flex'`` MaSA (the same function;
            ``'flex'`` makes the decay inside a FlexAttention kernel, compiled on CUDA, see
            :mod:`mmrmt.models.layers.flex_attention`). Default: 'fast'.
        init_cfg (dict | list[dict] | None): ``dict(type='Pretrained', checkpoint=PATH)`` loads
            the authors' ImageNet or detection/segmentation checkpoints (see
            :func:`mmrmt.checkpoint.load_backbone_checkpoint`). Default: None.
    """

    def __init__(
        self,
        arch: Union[str, dict] = "t",
        in_channels: int = 3,
        out_indices: Sequence[int] = (0, 1, 2, 3),
        drop_path_rate: Optional[float] = None,
        layer_scale_init: float = 1e-6,
        frozen_stages: int = -1,
        norm_eval: bool = False,
        with_cp: bool = False,
        norm_cfg: Optional[dict] = None,
        attn_impl: str = "fast",
        init_cfg: Optional[Union[dict, List[dict]]] = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        self.arch = resolve_arch(arch)
        num_stages = len(self.arch["depths"])
        self.num_stages = num_stages
        out_indices = [out_indices] if isinstance(out_indices, int) else list(out_indices)
        out_indices = [index + num_stages if index < 0 else index for index in out_indices]
        bad = [index for index in out_indices if not 0 <= index < num_stages]
        if bad or not out_indices:
            raise ValueError(f"out_indices {out_indices} must lie in [0, {num_stages - 1}]")
        if not -1 <= frozen_stages <= num_stages:
            raise ValueError(f"frozen_stages={frozen_stages} must lie in [-1, {num_stages}]")
        check_attention_impl(attn_impl, "attn_impl")
        self.in_channels = in_channels
        self.out_indices = tuple(sorted(set(out_indices)))
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        norm_cfg = norm_cfg or dict(type="BN", requires_grad=True)
        if drop_path_rate is None:
            drop_path_rate = self.arch["drop_path_rate"]
        dims = self.arch["embed_dims"]
        self.embed_dims = list(dims)

        self.patch_embed = PatchEmbed(in_channels, dims[0], norm_cfg)
        rates = torch.linspace(0, drop_path_rate, sum(self.arch["depths"]), device="cpu").tolist()
        self.layers = nn.ModuleList()
        for stage in range(num_stages):
            start = sum(self.arch["depths"][:stage])
            self.layers.append(
                RetentionStage(
                    embed_dim=dims[stage],
                    depth=self.arch["depths"][stage],
                    num_heads=self.arch["num_heads"][stage],
                    mlp_ratio=self.arch["mlp_ratios"][stage],
                    decomposed=self.arch["decomposed"][stage],
                    initial_value=self.arch["initial_values"][stage],
                    heads_range=self.arch["heads_ranges"][stage],
                    drop_paths=rates[start : start + self.arch["depths"][stage]],
                    layer_scale=layer_scale_init if self.arch["layer_scales"][stage] else None,
                    out_channels=dims[stage + 1] if stage < num_stages - 1 else None,
                    norm_cfg=norm_cfg,
                    with_cp=with_cp,
                    attn_impl=attn_impl,
                )
            )
        # The authors' detection backbone normalises each output; ModuleDict keeps their
        # ``extra_norms.N`` keys while building norms only for the returned stages.
        self.extra_norms = nn.ModuleDict(
            {str(index): nn.LayerNorm(dims[index]) for index in self.out_indices}
        )
        self._freeze_stages()

    @property
    def feature_info(self) -> List[dict]:
        """Channels and stride of each returned output."""
        return [
            dict(num_chs=self.embed_dims[index], reduction=4 * 2**index, stage=index)
            for index in self.out_indices
        ]

    def set_attention_impl(self, impl: str) -> None:
        """Switch every block to another MaSA implementation (same weights); see
        :func:`set_attention_impl`."""
        set_attention_impl(self, impl)

    def init_weights(self) -> None:
        """Initialise as the authors do, or load a checkpoint from ``init_cfg``.

        ``init_cfg=dict(type='Pretrained', checkpoint=PATH[, prefix='backbone.'])`` goes through
        :func:`mmrmt.checkpoint.load_backbone_checkpoint`, which understands the authors' layouts
        and refuses a checkpoint that matches almost none of the weights.
        """
        init_cfg = self.init_cfg
        if isinstance(init_cfg, dict) and init_cfg.get("type") == "Pretrained":
            self.apply(self._init_module)
            load_backbone_checkpoint(
                self,
                init_cfg["checkpoint"],
                prefix=init_cfg.get("prefix"),
                map_location=init_cfg.get("map_location", "cpu"),
            )
            self._is_init = True
            return
        if init_cfg is None:
            self.apply(self._init_module)
            self._is_init = True
            return
        super().init_weights()

    @staticmethod
    def _init_module(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def _frozen_modules(self) -> List[nn.Module]:
        if self.frozen_stages < 0:
            return []
        # frozen_stages=i freezes the stem and stages 0..i-1; their downsampling lives at the end
        # of each stage, as in the authors' layout.
        modules: List[nn.Module] = [self.patch_embed]
        for stage in range(self.frozen_stages):
            modules.append(self.layers[stage])
            if str(stage) in self.extra_norms:
                modules.append(self.extra_norms[str(stage)])
        return modules

    def _freeze_stages(self) -> None:
        for module in self._frozen_modules():
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> "RMT":
        """Set training mode, keeping frozen stages and (with ``norm_eval``) BN layers in eval."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Run the backbone.

        Args:
            x (Tensor): (B, in_channels, H, W) images, any H and W.

        Returns:
            tuple[Tensor]: For each index in ``out_indices``, (B, C_i, ceil(H / s_i), ... ) with
            strides ``s_i`` = 4, 8, 16, 32 (each stride-2 conv rounds up).
        """
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"RMT expects input of shape (B, {self.in_channels}, H, W), "
                f"got {tuple(x.shape)} ({x.shape[1] if x.dim() == 4 else '?'} channels)"
            )
        x = self.patch_embed(x)
        outs = []
        for stage, layer in enumerate(self.layers):
            stage_out, x = layer(x)
            if stage in self.out_indices:
                out = self.extra_norms[str(stage)](stage_out)
                outs.append(out.permute(0, 3, 1, 2).contiguous())
            if stage == self.out_indices[-1]:
                break
        return tuple(outs)
