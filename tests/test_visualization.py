"""Pictures of MaSA: decay maps, recorded attention weights, effective receptive fields, tools."""

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from mmrmt.arch_zoo import head_decay_rates, resolve_arch
from mmrmt.models import RMT
from mmrmt.models.backbones.rmt import ConvStem
from mmrmt.models.layers import ManhattanSelfAttention, RetentionPosition
from mmrmt.visualization.attention import query_attention, record_attention, stage_attention
from mmrmt.visualization.decay import decay_maps, stage_position
from mmrmt.visualization.erf import effective_receptive_field, gradient_mass_areas
from mmrmt.visualization.figure_models import rmt_from_config
from mmrmt.visualization.gallery import (
    DEMO_CHECKPOINT,
    AttentionQuery,
    demo_checkpoint,
    draw_gallery,
)
from tests.helpers import REPO, load_tool
from tests.helpers import TINY_ARCH as SMALL_ARCH

TINY_ARCH = dict(SMALL_ARCH, embed_dims=[8, 16, 32, 64], mlp_ratios=[1, 1, 1, 1])


def manhattan_from(query, grid_size):
    """(H, W) ``|y - y_q| + |x - x_q|``."""
    rows = torch.arange(grid_size[0], dtype=torch.float64)[:, None]
    cols = torch.arange(grid_size[1], dtype=torch.float64)[None, :]
    return (rows - query[0]).abs() + (cols - query[1]).abs()


def paper_gammas(arch, stage):
    """(heads,) gamma_h = exp(head_decay_rates), float64."""
    settings = resolve_arch(arch)
    rates = head_decay_rates(
        settings["num_heads"][stage],
        settings["initial_values"][stage],
        settings["heads_ranges"][stage],
    )
    return rates.double().exp()


# -- decay maps ------------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", [0, 2], ids=["decomposed", "full"])
def test_decay_map_is_gamma_to_the_manhattan_distance(stage):
    grid_size, query = (6, 9), (2, 5)
    maps = decay_maps(stage_position("t", stage), grid_size, query)
    gammas = paper_gammas("t", stage)
    expected = gammas[:, None, None] ** manhattan_from(query, grid_size)
    np.testing.assert_allclose(maps.gammas, gammas.numpy(), rtol=1e-6)
    np.testing.assert_allclose(maps.combined, expected.numpy(), rtol=1e-5)


def test_decomposed_passes_decay_along_the_query_row_then_column():
    grid_size, query = (5, 7), (1, 4)
    maps = decay_maps(stage_position("t", 0), grid_size, query)
    gammas = paper_gammas("t", 0)
    along_row = gammas[:, None] ** (torch.arange(7.0, dtype=torch.float64) - query[1]).abs()
    along_column = gammas[:, None] ** (torch.arange(5.0, dtype=torch.float64) - query[0]).abs()
    np.testing.assert_allclose(maps.width_pass[:, query[0]], along_row.numpy(), rtol=1e-5)
    np.testing.assert_allclose(maps.height_pass[:, :, query[1]], along_column.numpy(), rtol=1e-5)
    assert np.count_nonzero(maps.width_pass) == len(gammas) * 7
    assert np.count_nonzero(maps.height_pass) == len(gammas) * 5


# -- attention weights -----------------------------------------------------------------------------


def rotated(t, tables):
    """RetNet's theta shift of (1, H, W, heads, d) written pairwise: (a, b) -> turned by theta."""
    even, odd = t[..., 0::2], t[..., 1::2]
    sin, cos = tables.sin[:, :, None, 0::2], tables.cos[:, :, None, 0::2]
    return torch.stack((even * cos - odd * sin, odd * cos + even * sin), dim=-1).flatten(-2)


def direct_weights(attention, position, x):
    """MaSA's softmax weights, computed from the projections, the tables' phases and the paper's
    ``log(gamma) * distance``, the way :func:`record_attention` reports them."""
    _, height, width, channels = x.shape
    heads = attention.num_heads
    tables = position.compute(height, width, torch.float32)
    split = (1, height, width, heads, channels // heads)
    q = rotated(attention.q_proj(x).view(split), tables)[0]
    k = rotated(attention.k_proj(x).view(split), tables)[0] * attention.scaling
    log_gamma = head_decay_rates(heads, 2.0, 4.0)[:, None, None]
    if not attention.decomposed:
        q, k = q.reshape(height * width, heads, -1), k.reshape(height * width, heads, -1)
        rows, cols = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
        grid = torch.stack((rows.flatten(), cols.flatten()), dim=-1).float()
        distance = (grid[:, None] - grid[None]).abs().sum(-1)
        logits = torch.einsum("nhd,mhd->hnm", q, k) + log_gamma * distance
        return {"full": torch.softmax(logits, dim=-1)[None]}

    def axis_distance(length):
        return (torch.arange(length)[:, None] - torch.arange(length)[None]).abs().float()

    width_logits = torch.einsum("yahd,ybhd->yhab", q, k) + log_gamma * axis_distance(width)
    height_logits = torch.einsum("axhd,bxhd->xhab", q, k) + log_gamma * axis_distance(height)
    return {
        "width": torch.softmax(width_logits, dim=-1)[None],
        "height": torch.softmax(height_logits, dim=-1)[None],
    }


@pytest.mark.parametrize("decomposed", [True, False], ids=["decomposed", "full"])
def test_recorded_weights_equal_a_direct_softmax_and_sum_to_one(decomposed):
    attention = ManhattanSelfAttention(16, 2, decomposed, impl="reference")
    position = RetentionPosition(16, 2, heads_range=4.0, decomposed=decomposed)
    x = torch.randn(1, 4, 5, 16)
    with torch.no_grad(), record_attention(attention) as records:
        attention(x, position.compute(4, 5, torch.float32))
        expected = direct_weights(attention, position, x)
    assert set(records[attention]) == set(expected)
    for axis, weights in records[attention].items():
        torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1]))
        torch.testing.assert_close(weights, expected[axis], rtol=1e-5, atol=1e-6)


def test_effective_weights_of_the_two_passes_reproduce_the_attention_output():
    attention = ManhattanSelfAttention(16, 2, decomposed=True, impl="reference")
    with torch.no_grad():  # out = attention alone: no LePE, identity output projection
        attention.lepe.conv.weight.zero_()
        attention.lepe.conv.bias.zero_()
        attention.out_proj.weight.copy_(torch.eye(16))
        attention.out_proj.bias.zero_()
    position = RetentionPosition(16, 2, decomposed=True)
    x, query = torch.randn(1, 4, 5, 16), (3, 1)
    with torch.no_grad(), record_attention(attention) as records:
        out = attention(x, position.compute(4, 5, torch.float32))
        values = attention.v_proj(x)[0].view(4, 5, 2, 8)  # (H, W, heads, d)
    maps = query_attention(records[attention], (4, 5), query)  # (heads, H, W)
    torch.testing.assert_close(maps.sum(dim=(1, 2)), torch.ones(2))
    expected = torch.einsum("hyx,yxhd->hd", maps, values).flatten()
    torch.testing.assert_close(out[0, query[0], query[1]], expected, rtol=1e-5, atol=1e-6)


def test_recording_leaves_the_reference_output_unchanged():
    backbone = RMT(arch=TINY_ARCH, attn_impl="reference").eval()
    image = torch.randn(1, 3, 32, 48)
    with torch.no_grad():
        plain = backbone(image)
        with record_attention(backbone) as records:
            recorded = backbone(image)
    assert len(records) == 4
    for got, want in zip(recorded, plain):
        assert torch.equal(got, want)


def test_recording_refuses_the_fast_path():
    with pytest.raises(ValueError, match="reference"):
        with record_attention(RMT(arch=TINY_ARCH)):
            pass


def test_stage_attention_maps_each_stage_from_the_query_pixel():
    backbone = RMT(arch=TINY_ARCH)
    results = stage_attention(backbone, torch.randn(1, 3, 64, 40), point=(37, 21))
    assert [result.maps.shape for result in results] == [
        (2, 16, 10),
        (2, 8, 5),
        (4, 4, 3),
        (4, 2, 2),
    ]
    assert [result.token for result in results] == [(9, 5), (4, 2), (2, 1), (1, 0)]
    for result in results:
        np.testing.assert_allclose(result.maps.sum(axis=(1, 2)), 1.0, rtol=1e-5)


def test_stage_attention_names_a_block_that_does_not_exist():
    with pytest.raises(ValueError, match="stage 0 has 1 blocks; block 1 does not exist"):
        stage_attention(RMT(arch=TINY_ARCH), torch.randn(1, 3, 32, 32), point=(0, 0), block=1)


# -- effective receptive field ---------------------------------------------------------------------


def receptive_window(index, convs):
    """Input rows [first, last] that output ``index`` of a chain of (kernel, stride, padding)."""
    first, last = index, index
    for kernel, stride, padding in reversed(convs):
        first, last = first * stride - padding, last * stride - padding + kernel - 1
    return first, last


def nonzero_window(erf):
    rows, cols = np.nonzero(erf)
    return (rows.min(), rows.max()), (cols.min(), cols.max())


def test_erf_of_a_single_3x3_conv_is_its_3x3_window():
    conv = nn.Conv2d(3, 16, 3, padding=1)
    erf = effective_receptive_field(conv, [torch.randn(1, 3, 9, 11) for _ in range(2)])
    assert nonzero_window(erf) == ((3, 5), (4, 6))


def test_erf_of_the_rmt_stem_stays_within_its_theoretical_receptive_field():
    stem = ConvStem(3, 16, dict(type="BN")).eval()
    convs = [
        (m.kernel_size[0], m.stride[0], m.padding[0]) for m in stem if isinstance(m, nn.Conv2d)
    ]
    erf = effective_receptive_field(stem, [torch.randn(1, 3, 64, 64) for _ in range(2)])
    window = receptive_window(8, convs)  # the 16x16 output's centre
    assert window == (23, 41)  # 19 pixels: 3 + 2*2 + 2*2 + 2*4 - 1 + 1
    assert nonzero_window(erf) == (window, window)


def test_gradient_mass_areas_count_the_fewest_highest_pixels():
    areas = gradient_mass_areas(np.array([[1.0, 4.0], [2.0, 3.0]]), (0.2, 0.5, 0.9, 1.0))
    assert [area.pixels for area in areas] == [1, 2, 3, 4]
    assert [area.fraction for area in areas] == [0.25, 0.5, 0.75, 1.0]


# -- tools -----------------------------------------------------------------------------------------


@pytest.fixture
def tiny_config(tmp_path: Path) -> Path:
    """The toy Mask R-CNN config with a tiny RMT."""
    path = tmp_path / "tiny_rmt.py"
    path.write_text(
        f"_base_ = {str(REPO / 'configs/det/maskrcnn_rmt_t_toy.py')!r}\n"
        f"model = dict(backbone=dict(arch={dict(_delete_=True, **TINY_ARCH)!r}),"
        " neck=dict(in_channels=[8, 16, 32, 64]))\n"
    )
    return path


def test_vis_decay_writes_the_stage_figure(tmp_path):
    args = ["--stage", "1", "--size", "5", "6", "--point", "0", "5", "--out", str(tmp_path)]
    assert load_tool("vis_decay").main(args) == 0
    assert [p.name for p in tmp_path.glob("*.png")] == ["decay_stage1.png"]


def test_vis_attention_writes_the_overlays(tiny_config, tmp_path):
    args = [str(tiny_config), "astronaut", "--point", "100", "300", "--size", "64"]
    assert load_tool("vis_attention").main(args + ["--out", str(tmp_path)]) == 0
    names = {p.name for p in tmp_path.glob("*.png")}
    assert names == {"attention_astronaut.png"} | {
        f"attention_astronaut_stage{stage}.png" for stage in range(4)
    }


def test_vis_erf_compares_random_trained_and_swin(tiny_config, tmp_path):
    model, _ = rmt_from_config(str(tiny_config))
    checkpoint = tmp_path / "tiny.pth"
    torch.save({"state_dict": model.state_dict()}, checkpoint)
    args = ["--stage", "1", "--size", "64", "--images", "chelsea", "--out", str(tmp_path)]
    args += ["--config", str(tiny_config), "--checkpoint", str(checkpoint)]
    assert load_tool("vis_erf").main(args) == 0
    assert (tmp_path / "erf.png").is_file() and (tmp_path / "erf_summary.md").is_file()
    summary = (tmp_path / "erf_summary.json").read_text()
    names = ("RMT-T, random init", "RMT, trained: tiny_rmt / tiny.pth", "Swin-T, random init")
    for name in names:
        assert name in summary


def test_gallery_draws_every_figure_and_says_the_weights_are_random(tiny_config, tmp_path):
    paths, table = draw_gallery(
        str(tmp_path),
        str(tiny_config),
        queries=[AttentionQuery("coffee", (200, 300))],
        attention_size=64,
        erf_size=32,
        erf_photos=["coffee"],
        decay_arch=TINY_ARCH,
    )
    expected = [f"decay_stage{stage}.png" for stage in range(4)] + ["attention_coffee.png"]
    expected += [f"attention_coffee_stage{stage}.png" for stage in range(4)] + ["erf.png"]
    assert [Path(path).name for path in paths] == expected
    assert all(Path(path).is_file() for path in paths)
    assert "no trained RMT-T" in table and "Swin-T, random init" in table


def test_make_vis_uses_the_demo_checkpoint_only_when_it_exists(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert demo_checkpoint(None) is None
    Path(DEMO_CHECKPOINT).parent.mkdir(parents=True)
    Path(DEMO_CHECKPOINT).touch()
    assert demo_checkpoint(None) == DEMO_CHECKPOINT
    assert demo_checkpoint("mine.pth") == "mine.pth"


def run_with_error(capsys, tool, args):
    """Run a tool expecting a user error; returns its one-line message."""
    assert load_tool(tool).main(args) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    return lines[0]


def test_a_point_outside_the_image_is_a_user_error(capsys, tiny_config, tmp_path):
    args = [str(tiny_config), "chelsea", "--point", "300", "10", "--out", str(tmp_path)]
    assert "outside the 300x451 image" in run_with_error(capsys, "vis_attention", args)


def test_an_unknown_stage_is_a_user_error(capsys, tmp_path):
    message = run_with_error(capsys, "vis_decay", ["--stage", "4", "--out", str(tmp_path)])
    assert "unknown stage 4" in message
    message = run_with_error(capsys, "vis_erf", ["--stage", "7", "--out", str(tmp_path)])
    assert "unknown stage 7" in message


def test_a_missing_image_is_a_user_error(capsys, tiny_config, tmp_path):
    args = [str(tiny_config), str(tmp_path / "nope.jpg"), "--point", "1", "1"]
    assert "image not found" in run_with_error(capsys, "vis_attention", args)


def test_a_missing_checkpoint_is_a_user_error(capsys, tiny_config, tmp_path):
    args = [str(tiny_config), str(tmp_path / "gone.pth"), "astronaut", "--point", "1", "1"]
    assert "checkpoint not found" in run_with_error(capsys, "vis_attention", args)


def test_a_checkpoint_of_another_model_is_a_user_error(capsys, tiny_config, tmp_path):
    model, _ = rmt_from_config(str(tiny_config))
    checkpoint = tmp_path / "tiny.pth"
    torch.save({"state_dict": model.state_dict()}, checkpoint)
    toy_config = str(REPO / "configs/det/maskrcnn_rmt_t_toy.py")
    args = [toy_config, str(checkpoint), "astronaut", "--point", "1", "1"]
    message = run_with_error(capsys, "vis_attention", args)
    assert "does not fit" in message and "missing" in message and "of another shape" in message


def test_a_config_without_rmt_is_a_user_error(capsys, tmp_path):
    config = tmp_path / "retinanet_r18.py"
    config.write_text(
        "_base_ = ['mmdet::_base_/models/retinanet_r50_fpn.py', "
        "'mmdet::_base_/default_runtime.py']\n"
        "model = dict(backbone=dict(depth=18, init_cfg=None), "
        "neck=dict(in_channels=[64, 128, 256, 512]))\n"
    )
    message = run_with_error(
        capsys, "vis_attention", [str(config), "astronaut", "--point", "1", "1"]
    )
    assert "without an RMT backbone" in message
