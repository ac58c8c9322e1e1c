"""Loading the authors' checkpoints, safe unpickling, and clear errors naming the file."""

import os
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner import load_checkpoint

import mmrmt  # noqa: F401  (allow-lists mmengine's checkpoint types)
from mmrmt.checkpoint import CheckpointError, load_backbone_checkpoint
from mmrmt.models import RMT, resolve_arch
from tests.conftest import randomize_buffers_and_norms

SMALL_T = dict(resolve_arch("t"), depths=[1, 1, 1, 1])


def _trained_model() -> RMT:
    model = RMT(arch=SMALL_T).eval()
    model.init_weights()
    randomize_buffers_and_norms(model)
    return model


def _authors_imagenet_checkpoint(model: RMT) -> dict:
    """What the authors' ImageNet release holds: Relpos buffers, a classifier, no extra_norms."""
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("extra_norms")}
    for index, stage in enumerate(model.layers):
        state[f"layers.{index}.Relpos.decay"] = stage.rel_pos.decay.clone()
        state[f"layers.{index}.Relpos.angle"] = stage.rel_pos.angle.clone()
    state.update({"proj.weight": torch.randn(1024, 512), "norm.weight": torch.ones(1024)})
    state.update({"head.weight": torch.randn(1000, 1024), "head.bias": torch.zeros(1000)})
    return {"model": state}


def test_imagenet_checkpoint_loads_through_init_cfg(tmp_path):
    source = _trained_model()
    path = tmp_path / "rmt_t_imagenet.pth"
    torch.save(_authors_imagenet_checkpoint(source), path)
    target = RMT(arch=SMALL_T, init_cfg=dict(type="Pretrained", checkpoint=str(path))).eval()
    target.init_weights()
    images = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        # extra_norms are not in ImageNet checkpoints: compare the stage outputs before them.
        target.extra_norms.load_state_dict(source.extra_norms.state_dict())
        for got, want in zip(target(images), source(images)):
            torch.testing.assert_close(got, want)


def test_detection_checkpoint_loads_with_backbone_prefix(tmp_path):
    source = _trained_model()
    state = {f"backbone.{k}": v for k, v in source.state_dict().items()}
    state["neck.lateral_convs.0.conv.weight"] = torch.randn(256, 64, 1, 1)
    path = tmp_path / "maskrcnn_rmt_t.pth"
    torch.save({"state_dict": state, "meta": {"epoch": np.int64(12), "CLASSES": ("a", "b")}}, path)
    target = RMT(
        arch=SMALL_T, init_cfg=dict(type="Pretrained", checkpoint=str(path), prefix="backbone.")
    ).eval()
    target.init_weights()
    images = torch.randn(1, 3, 48, 80)
    with torch.no_grad():
        for got, want in zip(target(images), source(images)):
            torch.testing.assert_close(got, want)


def test_missing_checkpoint_names_file_and_remedy(tmp_path):
    path = tmp_path / "checkpoints" / "rmt_s.pth"
    model = RMT(arch=SMALL_T, init_cfg=dict(type="Pretrained", checkpoint=str(path)))
    with pytest.raises(FileNotFoundError, match="rmt_s.pth.*init_cfg=None"):
        model.init_weights()


def test_checkpoint_of_another_model_is_an_error(tmp_path):
    path = tmp_path / "resnet.pth"
    torch.save({"state_dict": {"conv1.weight": torch.randn(64, 3, 7, 7)}}, path)
    with pytest.raises(CheckpointError, match="resnet.pth matches only 0 of"):
        load_backbone_checkpoint(RMT(arch=SMALL_T), str(path))


def test_checkpoint_of_another_arch_is_an_error(tmp_path):
    path = tmp_path / "rmt_b.pth"
    torch.save({"model": RMT(arch=dict(resolve_arch("b"), depths=[1, 1, 1, 1])).state_dict()}, path)
    with pytest.raises(CheckpointError, match="rmt_b.pth does not fit"):
        load_backbone_checkpoint(RMT(arch=SMALL_T), str(path))


def test_decay_buffers_of_another_arch_are_detected(tmp_path):
    checkpoint = _authors_imagenet_checkpoint(_trained_model())
    checkpoint["model"]["layers.2.Relpos.decay"] = torch.zeros(8)
    path = tmp_path / "other_decay.pth"
    torch.save(checkpoint, path)
    with pytest.raises(CheckpointError, match=r"other_decay.pth.*stages \[2\]"):
        load_backbone_checkpoint(RMT(arch=SMALL_T), str(path))


def test_truncated_checkpoint_is_an_error_naming_the_file(tmp_path):
    good = tmp_path / "good.pth"
    torch.save(_authors_imagenet_checkpoint(_trained_model()), good)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[: os.path.getsize(good) // 2])
    with pytest.raises(CheckpointError, match="truncated.pth"):
        load_backbone_checkpoint(RMT(arch=SMALL_T), str(truncated))


class _RunsCode:
    """Unpickling this calls os.system: a checkpoint carrying code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_checkpoint_with_pickled_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "code_ran"
    path = tmp_path / "evil.pth"
    state = _authors_imagenet_checkpoint(_trained_model())
    state["payload"] = _RunsCode(marker)
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="Refusing checkpoint .*evil.pth"):
        load_backbone_checkpoint(RMT(arch=SMALL_T), str(path))
    with pytest.raises(pickle.UnpicklingError, match="os.system|posix.system"):
        load_checkpoint(RMT(arch=SMALL_T), str(path))
    assert not marker.exists()


def test_mmengine_checkpoint_with_numpy_and_history_buffers_loads(tmp_path):
    model = _trained_model()
    buffer = HistoryBuffer()
    buffer.update(np.float64(0.5))
    meta = {
        "seed": np.int64(3),
        "iou": np.float32(0.25),
        "hist": np.arange(4),
        "message_hub": {"log_scalars": {"train/loss": buffer}},
    }
    path = tmp_path / "epoch_1.pth"
    torch.save({"meta": meta, "state_dict": model.state_dict()}, path)
    loaded = load_checkpoint(RMT(arch=SMALL_T), str(path), map_location="cpu")
    assert loaded["meta"]["seed"] == 3
    assert loaded["meta"]["message_hub"]["log_scalars"]["train/loss"].mean() == 0.5


class _LooksUpAttribute:
    """Pickles as ``getattr(owner, name)``, the gadget HistoryBuffer's pickles use."""

    def __init__(self, owner, name):
        self.owner, self.name = owner, name

    def __reduce__(self):
        return (getattr, (self.owner, self.name))


@pytest.mark.parametrize(
    "owner,name", [(np.ndarray, "tofile"), (HistoryBuffer, "__init__"), (HistoryBuffer, "update")]
)
def test_getattr_in_checkpoints_is_limited_to_history_buffer_statistics(tmp_path, owner, name):
    path = tmp_path / "gadget.pth"
    torch.save({"meta": {"x": _LooksUpAttribute(owner, name)}}, path)
    if name == "update":  # a public HistoryBuffer method: harmless, allowed
        assert torch.load(path)["meta"]["x"] is HistoryBuffer.update
    else:
        with pytest.raises(Exception, match="only HistoryBuffer statistics methods"):
            torch.load(path)
