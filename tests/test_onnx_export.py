"""ONNX export and evaluation in onnxruntime: MaSA's exportable path, the RMT-T backbone, a toy
detector and segmentor at several input sizes, their toy metrics through the config's test
loop, and the one-line errors of ``tools/export_onnx.py`` and ``tools/test_onnx.py``.

Detector and segmentor use the toy configs with a tiny RMT and random weights (saved as a
checkpoint, so ``tools/test.py`` can evaluate the same model): parity does not need training.
"""

import contextlib
import glob
import importlib.util
import io
import json
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
import torch
from mmengine.runner import Runner
from torch import nn

from mmrmt.deploy.dependencies import require
from mmrmt.models.layers.position import RetentionPosition
from mmrmt.models.layers.retention import ManhattanSelfAttention
from mmrmt.utils import build_model, load_config, load_model
from tests.helpers import REPO, TINY_ARCH, load_tool

DEPLOY_INSTALLED = all(
    importlib.util.find_spec(name) for name in ("onnx", "onnxscript", "onnxruntime")
)
needs_deploy = pytest.mark.skipif(
    not DEPLOY_INSTALLED, reason="needs the deploy extra: pip install -e .[deploy]"
)
needs_toy_data = pytest.mark.skipif(
    not (REPO / "data/toy_coco").is_dir() or not (REPO / "data/toy_ade").is_dir(),
    reason="needs the toy sets: make toy-data",
)

TINY_BACKBONE = f"backbone=dict(arch=dict(_delete_=True, **{TINY_ARCH!r}))"
TINY_MASK_RCNN = f"""
_base_ = [{str(REPO / "configs/det/maskrcnn_rmt_t_toy.py")!r}]
data_root = {str(REPO / "data/toy_coco") + "/"!r}
model = dict(
    {TINY_BACKBONE},
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=32),
    rpn_head=dict(in_channels=32, feat_channels=32),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=32),
        bbox_head=dict(in_channels=32, fc_out_channels=64),
        mask_roi_extractor=dict(out_channels=32),
        mask_head=dict(in_channels=32, conv_out_channels=16)))
test_dataloader = dict(num_workers=0, persistent_workers=False,
                       dataset=dict(data_root=data_root, indices=4))
test_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
"""
TINY_FPN = f"""
_base_ = [{str(REPO / "configs/seg/fpn_rmt_t_toy.py")!r}]
data_root = {str(REPO / "data/toy_ade")!r}
model = dict(
    {TINY_BACKBONE},
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=32),
    decode_head=dict(in_channels=[32, 32, 32, 32], channels=16))
test_dataloader = dict(num_workers=0, persistent_workers=False,
                       dataset=dict(data_root=data_root, indices=8))
"""
# A DETR: an mmdet detector whose outputs are not dense head maps, so not exportable here.
TINY_DETR = f"""
_base_ = ['mmdet::detr/detr_r18_8xb2-500e_coco.py']
custom_imports = dict(imports=['mmrmt'], allow_failed_imports=False)
model = dict(backbone=dict(_delete_=True, type='RMT', arch={TINY_ARCH!r}, out_indices=(3,)),
             neck=dict(in_channels=[128]))
"""
PARITY_TOLERANCE = 1e-4


def relative_error(actual: List[torch.Tensor], expected: List[torch.Tensor]) -> float:
    """max |actual - expected| / max |expected| over all outputs."""
    return max(
        float((got - want).abs().max() / want.abs().max()) for got, want in zip(actual, expected)
    )


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def export_with_tool(config: Path, checkpoint: Path, out: Path, shape: Tuple[int, int]) -> str:
    """Run tools/export_onnx.py; return what it printed."""
    printed = io.StringIO()
    args = [str(config), str(checkpoint), "--out", str(out), "--shape", *map(str, shape)]
    with contextlib.redirect_stdout(printed):
        assert load_tool("export_onnx").main(args) == 0
    return printed.getvalue()


def random_checkpoint(config: Path, path: Path) -> Tuple[nn.Module, Path]:
    """The config's model with seeded random weights, saved as a tools/train.py checkpoint."""
    torch.manual_seed(0)
    model = build_model(load_config(str(config))).eval()
    torch.save({"state_dict": model.state_dict(), "meta": {}}, path)
    return model, path


@pytest.fixture(scope="module")
def exported(tmp_path_factory, request) -> Dict:
    """Export a tiny toy config (``request.param``: 'mask_rcnn' or 'fpn') with random weights."""
    text, shape = {"mask_rcnn": (TINY_MASK_RCNN, (96, 128)), "fpn": (TINY_FPN, (128, 160))}[
        request.param
    ]
    root = tmp_path_factory.mktemp(request.param)
    config = root / f"tiny_{request.param}.py"
    config.write_text(text)
    model, checkpoint = random_checkpoint(config, root / "random.pth")
    out = root / "onnx" / "model.onnx"
    printed = export_with_tool(config, checkpoint, out, shape)
    return dict(config=config, checkpoint=checkpoint, model=model, out=out, printed=printed)


# -- MaSA's exportable path ---------------------------------------------------------------------


MASA_DIMS = {
    0: torch.export.Dim("batch", min=1),
    1: torch.export.Dim("height", min=2),
    2: torch.export.Dim("width", min=2),
}


class MaSAWithTables(nn.Module):
    """One fast MaSA layer with its stage's tables, as a stage runs it."""

    def __init__(self, decomposed: bool) -> None:
        super().__init__()
        self.position = RetentionPosition(32, 4, decomposed=decomposed)
        self.attention = ManhattanSelfAttention(32, 4, decomposed, impl="fast")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, height, width, _ = x.shape
        return self.attention(x, self.position(height, width, x.dtype))


def test_eager_fast_path_keeps_complex_rotation_and_cached_tables():
    position = RetentionPosition(32, 4)
    tables = position(6, 7, torch.float32)
    assert tables.rotation is not None and tables.rotation.is_complex()
    assert position(6, 7, torch.float32) is tables


@pytest.mark.parametrize("decomposed", [True, False], ids=["decomposed", "full"])
def test_exported_masa_computes_real_tables_from_the_traced_size(decomposed):
    layer = MaSAWithTables(decomposed).eval()
    program = torch.export.export(layer, (torch.randn(2, 6, 7, 32),), dynamic_shapes=(MASA_DIMS,))
    values = [node.meta.get("val") for node in program.graph.nodes]
    assert not any(isinstance(value, torch.Tensor) and value.is_complex() for value in values)
    assert not any("complex" in str(node.target) for node in program.graph.nodes)
    assert layer.position.cached_bytes() == 0  # nothing cached under a traced size
    unseen = torch.randn(1, 5, 9, 32)
    with torch.no_grad():
        torch.testing.assert_close(program.module()(unseen), layer(unseen), rtol=1e-5, atol=1e-5)


@needs_deploy
def test_exported_masa_runs_in_onnxruntime_at_unseen_sizes(tmp_path):
    from mmrmt.deploy import OnnxGraph

    layer = MaSAWithTables(decomposed=True).eval()
    path = str(tmp_path / "masa.onnx")
    torch.onnx.export(
        layer, (torch.randn(2, 6, 7, 32),), path, dynamo=True, verbose=False,
        dynamic_shapes=(MASA_DIMS,), opset_version=20,
    )  # fmt: skip
    graph = OnnxGraph(path)
    for shape in [(1, 5, 9, 32), (3, 11, 4, 32)]:
        x = torch.randn(shape)
        with torch.no_grad():
            assert relative_error(graph(x), [layer(x)]) < PARITY_TOLERANCE


def test_upsample_stand_in_keeps_mmseg_upsample_values_at_odd_sizes():
    from mmseg.models.utils import Upsample

    from mmrmt.deploy.rewrites import traceable

    model = nn.Sequential(Upsample(scale_factor=2, mode="bilinear", align_corners=False))
    x = torch.randn(1, 3, 5, 7)
    expected = model(x)
    with traceable(model):
        torch.testing.assert_close(model(x), expected)
    assert "forward" not in vars(model[0])  # restored


# -- RMT-T backbone -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rmt_t(tmp_path_factory):
    """The toy detector's RMT-T backbone (random weights), exported by the tool at 224x320."""
    config = str(REPO / "configs/det/maskrcnn_rmt_t_toy.py")
    out = tmp_path_factory.mktemp("rmt_t") / "rmt_t.onnx"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        args = [config, "--backbone-only", "--out", str(out), "--shape", "224", "320"]
        assert load_tool("export_onnx").main(args) == 0
    model = load_model(config, backbone_only=True)  # the same seeded weights
    return model, out, printed.getvalue()


@needs_deploy
@pytest.mark.parametrize(
    "shape", [(2, 224, 320), (1, 256, 192), (1, 97, 131)], ids=["traced", "unseen", "odd"]
)
def test_rmt_t_backbone_matches_pytorch_in_onnxruntime(rmt_t, shape):
    from mmrmt.deploy import OnnxGraph

    model, out, _ = rmt_t
    images = torch.randn(shape[0], 3, *shape[1:])
    with torch.no_grad():
        expected = list(model(images))
    assert relative_error(OnnxGraph(str(out))(images), expected) <= PARITY_TOLERANCE


@needs_deploy
def test_backbone_file_has_dynamic_batch_height_and_width(rmt_t):
    from mmrmt.deploy import OnnxGraph

    graph = OnnxGraph(str(rmt_t[1]))
    assert graph.session.get_inputs()[0].shape == ["batch", 3, "height", "width"]
    assert graph.kind == "backbone" and graph.output_names == [f"feats.{i}" for i in range(4)]


@needs_deploy
def test_export_prints_the_file_its_size_the_opset_and_the_parity(rmt_t):
    _, out, printed = rmt_t
    assert f"wrote {out} (" in printed and " MB, opset 20, backbone)" in printed
    assert "parity, onnxruntime vs PyTorch, max relative error: 2x3x224x320: " in printed
    assert "(ok, tolerance 0.0001)" in printed


#: The two backbone layouts of the query-based configs (an export takes about 20 s): DINO
#: 4-scale returns stages 1-3 in mmdet's scope; Mask2Former (like DINO 5-scale) all four, here
#: in mmseg's. The other DINO and Mask2Former configs differ from these in arch and head only.
QUERY_FAMILIES = [
    "configs/det/dino_4scale_rmt_s_coco.py",
    "configs/seg/mask2former_rmt_t_ade20k.py",
]


@needs_deploy
@pytest.mark.parametrize("config", QUERY_FAMILIES, ids=lambda c: Path(c).stem)
def test_query_based_configs_export_their_backbone(config, tmp_path):
    """``--backbone-only`` on the DINO and Mask2Former configs (tiny arch, so it runs fast):
    one output per returned stage, with PyTorch's values."""
    from mmengine.config import Config

    from mmrmt.deploy import OnnxGraph

    tiny = tmp_path / "tiny.py"
    tiny.write_text(f"_base_ = {str(REPO / config)!r}\nmodel = dict({TINY_BACKBONE})\n")
    out = tmp_path / "backbone.onnx"
    with contextlib.redirect_stdout(io.StringIO()):
        args = [str(tiny), "--backbone-only", "--out", str(out), "--shape", "64", "96"]
        assert load_tool("export_onnx").main(args) == 0
    graph = OnnxGraph(str(out))
    returned = Config.fromfile(str(REPO / config)).model.backbone.out_indices
    assert graph.output_names == [f"feats.{i}" for i in range(len(returned))]
    model = load_model(str(tiny), backbone_only=True)
    images = torch.randn(1, 3, 97, 131)
    with torch.no_grad():
        expected = list(model(images))
    assert relative_error(graph(images), expected) <= PARITY_TOLERANCE


# -- toy detector and segmentor ---------------------------------------------------------------


@needs_deploy
@needs_toy_data
@pytest.mark.parametrize("exported", ["mask_rcnn"], indirect=True)
@pytest.mark.parametrize("size", [(96, 128), (97, 131), (160, 96)], ids=["traced", "odd", "unseen"])
def test_detector_outputs_match_pytorch_at_three_sizes(exported, size):
    from mmrmt.deploy import OnnxGraph
    from mmrmt.deploy.graphs import DenseHeadGraph

    images = torch.randn(1, 3, *size)
    with torch.no_grad():
        expected = list(DenseHeadGraph(exported["model"], "rpn_head", True)(images))
    assert relative_error(OnnxGraph(str(exported["out"]))(images), expected) <= PARITY_TOLERANCE


@needs_deploy
@needs_toy_data
@pytest.mark.parametrize("exported", ["mask_rcnn"], indirect=True)
def test_two_stage_export_writes_its_roi_heads_beside_the_file(exported):
    from mmrmt.deploy import OnnxGraph

    folder = exported["out"].parent
    assert OnnxGraph(str(exported["out"])).parts == {
        "roi_head.bbox_head": "model.roi_head.bbox_head.onnx",
        "roi_head.mask_head": "model.roi_head.mask_head.onnx",
    }
    for part in ("bbox_head", "mask_head"):
        assert f"wrote {folder}/model.roi_head.{part}.onnx (" in exported["printed"]
    assert "ABOVE TOLERANCE" not in exported["printed"]


@needs_deploy
@needs_toy_data
@pytest.mark.parametrize("exported", ["mask_rcnn"], indirect=True)
def test_onnx_detector_predicts_what_pytorch_predicts_on_toy_val_images(exported):
    from mmrmt.deploy import OnnxRuntimeModel

    cfg = load_config(str(exported["config"]))
    loader = Runner.build_dataloader(cfg.test_dataloader)
    onnx_model = OnnxRuntimeModel(str(exported["out"]), cfg.model)
    model = exported["model"]
    compared = 0
    for batch in loader:
        with torch.no_grad():
            expected = model.test_step(batch)
            got = onnx_model.test_step(batch)
        for want, have in zip(expected, got):
            want, have = want.pred_instances, have.pred_instances
            assert len(have) == len(want) > 0
            torch.testing.assert_close(have.scores, want.scores, rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(have.bboxes, want.bboxes, rtol=1e-4, atol=1e-3)
            assert torch.equal(have.labels, want.labels)
            assert (have.masks != want.masks).float().mean() < 1e-3
            compared += 1
    assert compared == 4


def logged_metrics(work_dir: Path) -> Dict[str, float]:
    """The metrics mmengine's LoggerHook dumped for a tools/test*.py run in ``work_dir``."""
    (path,) = glob.glob(str(work_dir / "*" / "*.json"))
    return json.loads(Path(path).read_text())


def evaluate_both(exported: Dict, tmp_path: Path) -> Tuple[Dict, Dict]:
    """Metrics of tools/test.py on the checkpoint and tools/test_onnx.py on its export."""
    config = str(exported["config"])
    pytorch, onnx = tmp_path / "pytorch", tmp_path / "onnx"
    args = ["--work-dir", str(pytorch)]
    assert load_tool("test").main([config, str(exported["checkpoint"]), *args]) == 0
    args = ["--work-dir", str(onnx)]
    assert load_tool("test_onnx").main([config, str(exported["out"]), *args]) == 0
    return logged_metrics(pytorch), logged_metrics(onnx)


@needs_deploy
@needs_toy_data
@pytest.mark.parametrize("exported", ["mask_rcnn"], indirect=True)
def test_toy_detection_metrics_of_the_onnx_file_match_tools_test(exported, tmp_path):
    pytorch, onnx = evaluate_both(exported, tmp_path)
    for metric in ("coco/bbox_mAP", "coco/bbox_mAP_50", "coco/segm_mAP", "coco/segm_mAP_50"):
        assert abs(onnx[metric] - pytorch[metric]) <= 0.005, metric


@needs_deploy
@needs_toy_data
@pytest.mark.parametrize("exported", ["fpn"], indirect=True)
@pytest.mark.parametrize(
    "size", [(128, 160), (145, 191), (192, 96)], ids=["traced", "odd", "unseen"]
)
def test_segmentor_logits_match_pytorch_at_three_sizes(exported, size):
    from mmrmt.deploy import OnnxGraph

    images = torch.randn(1, 3, *size)
    with torch.no_grad():
        expected = [exported["model"]._forward(images)]
    assert relative_error(OnnxGraph(str(exported["out"]))(images), expected) <= PARITY_TOLERANCE


@needs_deploy
@needs_toy_data
@pytest.mark.parametrize("exported", ["fpn"], indirect=True)
def test_toy_segmentation_miou_of_the_onnx_file_matches_tools_test(exported, tmp_path):
    pytorch, onnx = evaluate_both(exported, tmp_path)
    assert pytorch["mIoU"] > 0  # random weights still label some pixels right
    assert abs(onnx["mIoU"] - pytorch["mIoU"]) <= 0.2


def test_benchmark_times_the_candidates_in_interleaved_rounds():
    from mmrmt.benchmark.timing import interleaved_medians

    calls = []
    runs = {name: (lambda name=name: calls.append(name)) for name in ("PyTorch", "onnxruntime")}
    medians = interleaved_medians(runs, warmup=1, repeats=3)
    assert calls == ["PyTorch", "onnxruntime"] * 4  # one warm-up each, then three rounds
    assert set(medians) == {"PyTorch", "onnxruntime"}


# -- one-line errors ------------------------------------------------------------------------------


def test_export_reports_a_missing_config_in_one_line(tmp_path, capsys):
    out = str(tmp_path / "model.onnx")
    assert load_tool("export_onnx").main(["configs/det/no_such.py", "--out", out]) == 1
    assert "config file not found: configs/det/no_such.py" in one_line_error(capsys)


def test_export_reports_a_missing_checkpoint_in_one_line(tmp_path, capsys):
    config, missing = "configs/det/maskrcnn_rmt_t_toy.py", str(tmp_path / "epoch_9.pth")
    code = load_tool("export_onnx").main([config, missing, "--out", str(tmp_path / "m.onnx")])
    assert code == 1
    assert f"checkpoint not found: {missing}" in one_line_error(capsys)


def test_export_refuses_a_model_that_is_neither_a_dense_detector_nor_a_segmentor(tmp_path, capsys):
    config = tmp_path / "tiny_detr.py"
    config.write_text(TINY_DETR)
    code = load_tool("export_onnx").main([str(config), "--out", str(tmp_path / "m.onnx")])
    assert code == 1
    error = one_line_error(capsys)
    assert "builds a DETR; ONNX export supports" in error and "--backbone-only" in error


@needs_deploy
def test_export_refuses_an_opset_too_old_for_its_operators(tmp_path, capsys):
    args = ["--arch", "t", "--out", str(tmp_path / "m.onnx"), "--opset", "11"]
    assert load_tool("export_onnx").main(args) == 1
    assert "--opset 11 is too old" in one_line_error(capsys)


@needs_deploy
def test_export_reports_an_output_path_that_cannot_be_written(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    out = str(blocker / "model.onnx")
    assert load_tool("export_onnx").main(["--arch", "t", "--out", out]) == 1
    assert f"cannot write --out {out}" in one_line_error(capsys)


def test_missing_deploy_extra_is_named_in_one_line(monkeypatch):
    def no_onnxruntime(name, *args):
        raise ImportError(f"No module named {name!r}")

    monkeypatch.setattr(importlib, "import_module", no_onnxruntime)
    with pytest.raises(
        ImportError, match=r"onnxruntime is not installed.*pip install -e \.\[deploy\]"
    ):
        require("onnxruntime")


@needs_deploy
def test_test_onnx_reports_a_missing_file_in_one_line(tmp_path, capsys):
    config, missing = "configs/seg/fpn_rmt_t_toy.py", str(tmp_path / "none.onnx")
    assert load_tool("test_onnx").main([config, missing]) == 1
    assert f"ONNX file not found: {missing}" in one_line_error(capsys)


@needs_deploy
@needs_toy_data
def test_test_onnx_refuses_a_file_of_another_kind_than_the_config(rmt_t, tmp_path, capsys):
    args = ["configs/seg/fpn_rmt_t_toy.py", str(rmt_t[1]), "--work-dir", str(tmp_path)]
    assert load_tool("test_onnx").main(args) == 1
    assert "holds a backbone, the config a segmentor" in one_line_error(capsys)
