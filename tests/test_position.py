"""Decay masks and rotary tables of Manhattan Self-Attention."""

import math

import pytest
import torch

from mmrmt.models.layers import RetentionPosition, head_decay_rates, manhattan_distance


def test_decay_rates_follow_gamma_formula():
    rates = head_decay_rates(num_heads=4, initial_value=2, heads_range=6)
    expected = [math.log(1 - 2 ** (-2 - 6 * h / 4)) for h in range(4)]
    torch.testing.assert_close(rates, torch.tensor(expected))
    assert (rates < 0).all() and (rates.diff() > 0).all()  # later heads decay more slowly


def test_full_decay_mask_is_log_gamma_times_manhattan_distance():
    position = RetentionPosition(embed_dim=32, num_heads=2, heads_range=4, decomposed=False)
    tables = position(3, 4, torch.float32)
    assert tables.decay_full.shape == (2, 12, 12)
    for head in range(2):
        log_gamma = math.log(1 - 2 ** (-2 - 4 * head / 2))
        for n in range(12):
            for m in range(12):
                distance = abs(n // 4 - m // 4) + abs(n % 4 - m % 4)
                assert tables.decay_full[head, n, m].item() == pytest.approx(log_gamma * distance)


def test_decomposed_masks_are_one_dimensional_decays():
    position = RetentionPosition(embed_dim=32, num_heads=2, heads_range=4, decomposed=True)
    tables = position(3, 5, torch.float32)
    assert tables.decay_full is None
    rates = head_decay_rates(2, 2, 4)
    for axis_table, length in ((tables.decay_height, 3), (tables.decay_width, 5)):
        assert axis_table.shape == (2, length, length)
        index = torch.arange(length, dtype=torch.float32)
        expected = rates[:, None, None] * (index[:, None] - index[None, :]).abs()
        torch.testing.assert_close(axis_table, expected)


def test_full_mask_is_sum_of_axis_masks():
    full = RetentionPosition(32, 4, heads_range=6, decomposed=False)(4, 6, torch.float32)
    axes = RetentionPosition(32, 4, heads_range=6, decomposed=True)(4, 6, torch.float32)
    combined = axes.decay_height[:, :, None, :, None] + axes.decay_width[:, None, :, None, :]
    torch.testing.assert_close(full.decay_full, combined.reshape(4, 24, 24))


def test_manhattan_distance_small_grid():
    distance = manhattan_distance(2, 2)
    assert distance.tolist() == [[0, 1, 1, 2], [1, 0, 2, 1], [1, 2, 0, 1], [2, 1, 1, 0]]


def test_rotary_phases_use_raster_index():
    position = RetentionPosition(embed_dim=8, num_heads=1)
    tables = position(2, 3, torch.float32)
    frequencies = 1.0 / 10000 ** torch.linspace(0, 1, 4)
    raster = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    torch.testing.assert_close(tables.sin[..., 0::2], torch.sin(raster[..., None] * frequencies))
    torch.testing.assert_close(tables.cos[..., 1::2], torch.cos(raster[..., None] * frequencies))


def test_tables_are_cached_per_shape_and_dtype():
    position = RetentionPosition(32, 4, decomposed=True)
    first = position(8, 8, torch.float32)
    assert position(8, 8, torch.float32) is first
    assert position(8, 9, torch.float32) is not first
    as_bf16 = position(8, 8, torch.bfloat16)
    assert as_bf16 is not first and as_bf16.decay_width.dtype == torch.bfloat16


def test_cache_is_bounded_and_cleared_when_moved():
    position = RetentionPosition(32, 4, decomposed=False, cache_size=2)
    for size in (4, 5, 6):
        position(size, size, torch.float32)
    assert len(position._cache) == 2
    position.double()
    assert len(position._cache) == 0
    assert position(4, 4, torch.float64).sin.device == position.decay.device
