"""The benchmark package: the table and its ratios, the candidates, the timing order, the
memory probe, and the one-line errors of tools/benchmark.py."""

import argparse
from pathlib import Path
from typing import Dict, List

import pytest
import torch
from mmengine.config import Config
from torch import nn

from mmrmt.baselines import SWIN_T
from mmrmt.benchmark import add_benchmark_args, parse_benchmark_args
from mmrmt.benchmark.candidates import (
    SWIN_BACKBONE_GROUP,
    Candidate,
    arch_candidates,
    config_candidates,
    swin_config,
)
from mmrmt.benchmark.markdown_report import markdown_table
from mmrmt.benchmark.memory import cpu_peak_memory
from mmrmt.benchmark.timing import CandidateSteps, StepTime, time_candidates
from mmrmt.models.layers import ManhattanSelfAttention
from tests.helpers import load_tool

RMT_T_DIMS = [64, 128, 256, 512]


def options(*argv: str) -> argparse.Namespace:
    """The benchmark's options for ``argv``, as the tool parses them."""
    parser = argparse.ArgumentParser()
    add_benchmark_args(parser)
    return parse_benchmark_args(parser, list(argv))


def unbuildable() -> None:
    raise AssertionError("the report must not build models")


def fake(name: str, group: str, impl: str) -> Candidate:
    """A candidate that is only a row of the table."""
    return Candidate(name, group, impl, build=unbuildable)


def walls(*seconds: float) -> List[StepTime]:
    """Timed steps with these wall times and twice as much CPU time."""
    return [StepTime(wall, 2 * wall) for wall in seconds]


def table_cells(table: str) -> Dict[str, Dict[str, str]]:
    """Each row of a Markdown table as {column: cell}, keyed by the model column."""
    header, _, *rows = table.splitlines()
    columns = [cell.strip() for cell in header.strip("|").split("|")]
    cells = [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]
    return {row[0]: dict(zip(columns, row)) for row in cells}


# -- report ------------------------------------------------------------------------------------
def test_table_gives_median_min_cpu_time_and_throughput():
    candidate = fake("RMT-T fast", "RMT-T backbone", "fast")
    times = {"RMT-T fast": walls(0.3, 0.1, 0.2)}

    row = table_cells(markdown_table([candidate], "train", times, {}, batch=2))["RMT-T fast"]

    assert row["mode"] == "train"
    assert row["median (ms)"] == "200"
    assert row["min (ms)"] == "100"
    assert row["CPU time (ms)"] == "400"
    assert row["images/s"] == "10.00"


def test_speed_up_is_reference_median_over_candidate_median():
    candidates = [fake("RMT-T fast", "RMT-T backbone", "fast")]
    candidates.append(fake("RMT-T reference", "RMT-T backbone", "reference"))
    times = {"RMT-T fast": walls(0.1, 0.1, 0.5), "RMT-T reference": walls(0.3, 0.3, 0.1)}

    rows = table_cells(markdown_table(candidates, "infer", times, {}, batch=1))

    assert rows["RMT-T fast"]["speed-up vs reference"] == "3.00x"
    assert rows["RMT-T reference"]["speed-up vs reference"] == "1.00x"


def test_backbones_are_compared_with_the_swin_backbone():
    candidates = [
        fake("RMT-T fast", "RMT-T backbone", "fast"),
        fake("RMT-S fast", "RMT-S backbone", "fast"),
        fake("Swin-T (mmdet)", SWIN_BACKBONE_GROUP, "swin"),
    ]
    times = {"RMT-T fast": walls(0.15), "RMT-S fast": walls(0.3), "Swin-T (mmdet)": walls(0.1)}

    rows = table_cells(markdown_table(candidates, "infer", times, {}, batch=1))

    assert rows["RMT-T fast"]["time vs Swin-T"] == "1.50x"
    assert rows["RMT-S fast"]["time vs Swin-T"] == "3.00x"
    assert rows["Swin-T (mmdet)"]["time vs Swin-T"] == "1.00x"
    assert rows["Swin-T (mmdet)"]["speed-up vs reference"] == ""


def test_configs_are_compared_with_swin_in_the_same_config_only():
    candidates = [
        fake("Swin-T (mmdet)", SWIN_BACKBONE_GROUP, "swin"),
        fake("det fast", "det", "fast"),
        fake("det reference", "det", "reference"),
        fake("det with Swin-T", "det", "swin"),
        fake("seg fast", "seg", "fast"),
    ]
    times = {
        "Swin-T (mmdet)": walls(0.01),
        "det fast": walls(0.4),
        "det reference": walls(0.8),
        "det with Swin-T": walls(0.2),
        "seg fast": walls(0.5),
    }

    rows = table_cells(markdown_table(candidates, "infer", times, {}, batch=1))

    assert rows["det fast"]["time vs Swin-T"] == "2.00x"
    assert rows["det reference"]["time vs Swin-T"] == "4.00x"
    assert rows["det with Swin-T"]["speed-up vs reference"] == ""
    assert rows["seg fast"]["time vs Swin-T"] == ""
    assert rows["seg fast"]["speed-up vs reference"] == ""


def test_memory_cell_is_empty_when_not_measured():
    candidates = [fake(name, "RMT-T backbone", "fast") for name in ("a", "b", "c")]
    times = {name: walls(0.1) for name in ("a", "b", "c")}

    rows = table_cells(markdown_table(candidates, "infer", times, {"a": 123.4, "b": None}, 1))

    assert rows["a"]["peak mem (MiB)"] == "123"
    assert rows["b"]["peak mem (MiB)"] == ""
    assert rows["c"]["peak mem (MiB)"] == ""


# -- Swin-T config -----------------------------------------------------------------------------
def test_swin_config_replaces_backbone_and_fpn_channels_but_not_the_original():
    cfg = Config(
        dict(
            model=dict(
                type="MaskRCNN",
                backbone=dict(type="RMT", arch="t", out_indices=(0, 1, 2, 3)),
                neck=dict(type="FPN", in_channels=list(RMT_T_DIMS), out_channels=256),
                rpn_head=dict(type="RPNHead", in_channels=256),
            )
        )
    )

    swin = swin_config(cfg, [0, 1, 2, 3], RMT_T_DIMS)

    assert swin.model.backbone == dict(SWIN_T, out_indices=(0, 1, 2, 3))
    assert swin.model.neck.in_channels == [96, 192, 384, 768]
    assert swin.model.rpn_head.in_channels == 256
    assert cfg.model.backbone.type == "RMT"
    assert cfg.model.neck.in_channels == RMT_T_DIMS


def test_swin_config_adjusts_a_head_reading_one_stage_by_in_index():
    cfg = Config(
        dict(
            model=dict(
                type="EncoderDecoder",
                backbone=dict(type="RMT", arch="t", out_indices=(1, 2, 3)),
                decode_head=dict(type="UPerHead", in_channels=[128, 256, 512], in_index=[0, 1, 2]),
                auxiliary_head=dict(type="FCNHead", in_channels=256, in_index=1, channels=256),
            )
        )
    )

    swin = swin_config(cfg, [1, 2, 3], [128, 256, 512])

    assert swin.model.backbone.out_indices == (1, 2, 3)
    assert swin.model.decode_head.in_channels == [192, 384, 768]
    assert swin.model.auxiliary_head.in_channels == 384
    assert swin.model.auxiliary_head.channels == 256


# -- candidates --------------------------------------------------------------------------------
def masa_impls(model: nn.Module) -> set:
    """The implementations the model's MaSA modules run."""
    return {module.impl for module in model.modules() if isinstance(module, ManhattanSelfAttention)}


@pytest.fixture(scope="module")
def rmt_t_candidates() -> List[Candidate]:
    return arch_candidates("t", options("--arch", "t", "--size", "32", "32"))


def test_arch_gives_fast_and_reference_of_one_shared_model(rmt_t_candidates):
    fast, reference = rmt_t_candidates

    assert (fast.name, reference.name) == ("RMT-T fast", "RMT-T reference")
    assert fast.group == reference.group == "RMT-T backbone"
    assert fast.backbone
    assert fast.build()[0] is reference.build()[0]


def test_candidate_prepare_switches_the_shared_model_to_its_attention(rmt_t_candidates):
    fast, reference = rmt_t_candidates
    model = fast.build()[0]

    reference.prepare(model)
    impls_after_reference = masa_impls(model)
    fast.prepare(model)

    assert impls_after_reference == {"reference"}
    assert masa_impls(model) == {"fast"}


def test_arch_skips_swin_impl_which_is_one_shared_baseline():
    args = options("--arch", "t", "--impls", "fast", "swin")

    assert [candidate.name for candidate in arch_candidates("t", args)] == ["RMT-T fast"]


def test_config_with_a_non_rmt_backbone_is_a_user_error(tmp_path: Path):
    config = tmp_path / "resnet.py"
    config.write_text("default_scope = 'mmdet'\nmodel = dict(backbone=dict(type='ResNet'))\n")

    with pytest.raises(ValueError, match="'ResNet', not 'RMT'"):
        config_candidates(str(config), options("--config", str(config)))


def test_config_with_bf16_is_a_user_error():
    args = options("--config", "any.py", "--dtype", "bf16")

    with pytest.raises(ValueError, match="--dtype bf16/fp16 applies to --arch"):
        config_candidates("any.py", args)


# -- timing ------------------------------------------------------------------------------------
def recording_candidate(name: str, events: list) -> Candidate:
    """A candidate with a one-weight model whose steps and preparations are logged."""
    model = nn.Linear(1, 1)

    def step(train: bool) -> None:
        events.append((name, "step", model.training))
        if train:
            model(torch.ones(1, 1)).sum().backward()

    def prepare(model: nn.Module) -> None:
        events.append((name, "prepare"))

    return Candidate(name, "group", "fast", build=lambda: (model, step), prepare=prepare)


def test_time_candidates_warms_up_each_then_interleaves_the_rounds():
    events: list = []
    candidates = [recording_candidate("a", events), recording_candidate("b", events)]
    steps = CandidateSteps(candidates, "cpu")

    times = time_candidates(candidates, steps, train=False, warmup=2, repeats=3)

    order = [event[0] for event in events if event[1] == "step"]
    assert order == ["a", "a", "b", "b", "a", "b", "a", "b", "a", "b"]
    assert [len(times["a"]), len(times["b"])] == [3, 3]
    assert all(step.wall >= 0 and step.cpu >= 0 for step in times["a"] + times["b"])


def test_a_step_prepares_the_model_in_the_requested_mode_first():
    events: list = []
    candidate = recording_candidate("a", events)
    steps = CandidateSteps([candidate], "cpu")

    steps.run(candidate, train=True)
    steps.run(candidate, train=False)

    assert events == [("a", "prepare"), ("a", "step", True), ("a", "prepare"), ("a", "step", False)]


def test_a_training_step_clears_its_gradients_afterwards():
    candidate = recording_candidate("a", [])
    steps = CandidateSteps([candidate], "cpu")

    steps.run(candidate, train=True)

    assert all(param.grad is None for param in steps.model(candidate).parameters())


# -- memory probe and tool ---------------------------------------------------------------------
def test_memory_probe_reports_one_candidates_rss_rise_from_the_command_line():
    argv = ["--arch", "t", "--size", "32", "32", "--impls", "fast", "--threads", "1"]
    candidate = fake("RMT-T fast", "RMT-T backbone", "fast")

    peak = cpu_peak_memory(candidate, "infer", argv)

    assert isinstance(peak, float)
    assert peak >= 0


def test_tool_defaults_to_rmt_s_backbones():
    assert load_tool("benchmark").parse_args([]).arch == ["s"]


def test_tool_reports_a_missing_config_in_one_line(tmp_path: Path, capsys):
    missing = str(tmp_path / "missing.py")

    exit_code = load_tool("benchmark").main(["--config", missing, "--no-memory"])

    assert exit_code == 1
    assert f"config file not found: {missing}" in capsys.readouterr().err


def test_flex_is_timed_by_default_on_cuda_only():
    assert options("--arch", "t").impls == ["fast", "reference", "swin"]
    assert options("--arch", "t", "--device", "cuda").impls == ["fast", "reference", "flex", "swin"]


def test_flex_candidate_shares_the_model_and_switches_it_to_flex():
    candidates = arch_candidates("t", options("--arch", "t", "--impls", "fast", "flex"))
    fast, flex = candidates
    model = fast.build()[0]

    flex.prepare(model)

    assert flex.name == "RMT-T flex" and flex.build()[0] is model
    assert masa_impls(model) == {"flex"}


def test_fast_noext_times_the_shared_model_with_pytorchs_ops():
    from mmrmt.models.layers import cpu_kernels

    candidates = arch_candidates("t", options("--arch", "t", "--impls", "fast", "fast-noext"))
    fast, noext = candidates
    model = fast.build()[0]
    try:
        noext.prepare(model)
        assert not cpu_kernels._enabled
        assert noext.name == "RMT-T fast-noext" and noext.build()[0] is model
        assert masa_impls(model) == {"fast"}
        fast.prepare(model)
        assert cpu_kernels._enabled
    finally:
        cpu_kernels.set_cpu_kernels(True)
