"""An independent, deliberately plain RMT forward written from the paper's formulas.

It reads weights from a state dict in the authors' key layout and uses none of mmrmt's code:
rotary phases are complex rotations, the decay comes from each token's (row, column)
coordinates, and everything runs in float64. Tests compare mmrmt's RMT with it.
"""

import math

import torch
import torch.nn.functional as F


def _conv(state, name, x, stride=1, groups=1):
    weight = state[name + ".weight"]
    return F.conv2d(x, weight, state[name + ".bias"], stride, weight.shape[-1] // 2, 1, groups)


def _batch_norm(state, name, x):
    return F.batch_norm(
        x,
        state[name + ".running_mean"],
        state[name + ".running_var"],
        state[name + ".weight"],
        state[name + ".bias"],
        training=False,
        eps=1e-5,
    )


def _layer_norm(state, name, x, eps):
    """LayerNorm over channels of an NCHW map."""
    x = x.permute(0, 2, 3, 1)
    x = F.layer_norm(x, x.shape[-1:], state[name + ".weight"], state[name + ".bias"], eps)
    return x.permute(0, 3, 1, 2)


def _linear(state, name, x):
    """Linear over channels of an NCHW map."""
    out = F.linear(x.permute(0, 2, 3, 1), state[name + ".weight"], state[name + ".bias"])
    return out.permute(0, 3, 1, 2)


def _depthwise(state, name, x):
    return _conv(state, name + ".conv", x, groups=x.shape[1])


def _rotary(x, height, width):
    """RetNet theta shift: rotate channel pair j of the token at raster index n by n * f_j."""
    batch, heads, tokens, dim = x.shape
    pairs = dim // 2
    exponents = torch.linspace(0, 1, pairs, dtype=torch.float64)
    frequency = 10000.0**-exponents
    index = torch.arange(height * width, dtype=torch.float64)
    rotation = torch.polar(
        torch.ones(tokens, pairs, dtype=torch.float64), index[:, None] * frequency
    )
    as_complex = torch.view_as_complex(x.reshape(batch, heads, tokens, pairs, 2).contiguous())
    return torch.view_as_real(as_complex * rotation).reshape(batch, heads, tokens, dim)


def _masa(state, name, x, heads, heads_range, decomposed):
    """Manhattan self-attention of an NCHW map, from the formulas in the paper."""
    batch, channels, height, width = x.shape
    dim = channels // heads
    log_gamma = torch.tensor(
        [math.log(1 - 2 ** (-2 - heads_range * h / heads)) for h in range(heads)],
        dtype=torch.float64,
    )

    def split_heads(t):  # (B, heads, H*W, d), tokens in raster order
        return t.reshape(batch, heads, dim, height * width).transpose(-1, -2)

    q = _rotary(split_heads(_linear(state, name + ".q_proj", x)), height, width)
    k = _rotary(split_heads(_linear(state, name + ".k_proj", x)), height, width)
    v_map = _linear(state, name + ".v_proj", x)
    v = split_heads(v_map)
    rows = torch.arange(height * width) // width
    cols = torch.arange(height * width) % width
    logits = q @ k.transpose(-1, -2) / math.sqrt(dim)
    if not decomposed:
        distance = (rows[:, None] - rows[None, :]).abs() + (cols[:, None] - cols[None, :]).abs()
        out = torch.softmax(logits + log_gamma[:, None, None] * distance, dim=-1) @ v
    else:
        # Width pass: only tokens of the same row interact, decayed by |dx|.
        same_row = rows[:, None] == rows[None, :]
        width_decay = log_gamma[:, None, None] * (cols[:, None] - cols[None, :]).abs()
        width_logits = (logits + width_decay).masked_fill(~same_row, float("-inf"))
        v = torch.softmax(width_logits, dim=-1) @ v
        # Height pass on that result: tokens of the same column, decayed by |dy|.
        same_col = cols[:, None] == cols[None, :]
        height_decay = log_gamma[:, None, None] * (rows[:, None] - rows[None, :]).abs()
        height_logits = (logits + height_decay).masked_fill(~same_col, float("-inf"))
        out = torch.softmax(height_logits, dim=-1) @ v
    out = out.transpose(-1, -2).reshape(batch, channels, height, width)
    out = out + _depthwise(state, name + ".lepe", v_map)
    return _linear(state, name + ".out_proj", out)


def paper_rmt_forward(state, arch, x, out_indices=(0, 1, 2, 3)):
    """Run RMT in float64 from an authors'-layout state dict.

    Args:
        state (dict): name -> tensor, the authors' keys (with ``extra_norms.N``).
        arch (dict): a resolved mmrmt arch dict (depths, heads, ...).
        x (Tensor): (B, 3, H, W) images.
        out_indices (tuple): stages to return.

    Returns:
        list[Tensor]: the LayerNorm-ed stage outputs, NCHW, float64.
    """
    state = {key: value.double() for key, value in state.items()}
    x = x.double()
    stem = "patch_embed.proj."
    for conv_index, stride in ((0, 2), (3, 1), (6, 2), (9, 1)):
        x = _batch_norm(
            state, f"{stem}{conv_index + 1}", _conv(state, f"{stem}{conv_index}", x, stride)
        )
        if conv_index < 9:
            x = F.gelu(x)
    outs = []
    for stage, depth in enumerate(arch["depths"]):
        for block in range(depth):
            prefix = f"layers.{stage}.blocks.{block}."
            x = x + _depthwise(state, prefix + "pos", x)
            attn = _masa(
                state,
                prefix + "retention",
                _layer_norm(state, prefix + "retention_layer_norm", x, 1e-6),
                arch["num_heads"][stage],
                arch["heads_ranges"][stage],
                arch["decomposed"][stage],
            )
            scale_1 = state.get(prefix + "gamma_1")
            x = x + (attn * scale_1.permute(0, 3, 1, 2) if scale_1 is not None else attn)
            hidden = F.gelu(
                _linear(
                    state,
                    prefix + "ffn.fc1",
                    _layer_norm(state, prefix + "final_layer_norm", x, 1e-6),
                )
            )
            hidden = hidden + _depthwise(state, prefix + "ffn.dwconv", hidden)
            ffn = _linear(state, prefix + "ffn.fc2", hidden)
            scale_2 = state.get(prefix + "gamma_2")
            x = x + (ffn * scale_2.permute(0, 3, 1, 2) if scale_2 is not None else ffn)
        if stage in out_indices:
            outs.append(_layer_norm(state, f"extra_norms.{stage}", x, 1e-5))
        if stage < len(arch["depths"]) - 1:
            down = f"layers.{stage}.downsample."
            x = _batch_norm(state, down + "norm", _conv(state, down + "reduction", x, stride=2))
    return outs
