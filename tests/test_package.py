"""mmrmt as an installed package: the model index, ``mmrmt::`` config bases, and a wheel that
works outside this checkout."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from mmengine.config import Config

import mmrmt  # noqa: F401  (registers mmrmt:: config bases)
from mmrmt.package_data import MIM_DIR, resolve_config
from mmrmt.utils import build_model
from tests.helpers import REPO


def model_index_entries() -> list:
    index = yaml.safe_load((REPO / "model-index.yml").read_text())
    return [
        model
        for metafile in index["Import"]
        for model in yaml.safe_load((REPO / metafile).read_text())["Models"]
    ]


def parameters_in_millions(model) -> float:
    return round(sum(parameter.numel() for parameter in model.parameters()) / 1e6, 2)


def test_model_index_lists_every_paper_config_once():
    listed = [entry["Config"] for entry in model_index_entries()]
    configs = sorted(
        str(path.relative_to(REPO))
        for folder in ("det", "seg")
        for path in (REPO / "configs" / folder).glob("*.py")
        if not path.name.endswith("_toy.py")  # the toy demo configs are not paper models
    )
    assert sorted(listed) == configs
    assert len(set(entry["Name"] for entry in model_index_entries())) == len(listed)


@pytest.mark.parametrize("entry", model_index_entries(), ids=lambda entry: entry["Name"])
def test_each_listed_config_builds_with_its_listed_parameters(entry):
    name = entry["Config"].split("configs/", 1)[1]
    path = resolve_config(f"mmrmt::{name}")  # what mmengine and mim read: the package's copy
    assert os.path.samefile(path, REPO / entry["Config"])
    cfg = Config.fromfile(path)
    cfg.model.backbone.init_cfg = None
    listed = float(entry["Metadata"]["Parameters"].rstrip("M"))
    assert parameters_in_millions(build_model(cfg)) == listed


def test_an_editable_install_links_the_package_data_to_the_checkout():
    for name in ("configs", "tools", "model-index.yml"):
        assert os.path.samefile(os.path.join(MIM_DIR, name), REPO / name)


def test_a_user_config_inherits_mmrmt_configs_by_package_name(tmp_path):
    user = tmp_path / "my_maskrcnn.py"
    user.write_text("_base_ = 'mmrmt::det/maskrcnn_rmt_t_coco.py'\nmodel = dict(roi_head=None)\n")
    cfg = Config.fromfile(str(user))
    assert cfg.model.backbone.type == "RMT" and cfg.model.roi_head is None
    assert cfg.custom_imports.imports == ["mmrmt"]  # inherited, so a stock tool imports mmrmt


def test_an_unknown_packaged_config_is_named_in_the_error(tmp_path):
    user = tmp_path / "typo.py"
    user.write_text("_base_ = 'mmrmt::det/maskrcnn_rmt_x_coco.py'\n")
    with pytest.raises(FileNotFoundError, match="maskrcnn_rmt_x_coco.py"):
        Config.fromfile(str(user))


# -- a wheel, installed away from the checkout ---------------------------------------------------
_OUTSIDE = """
import sys
import mmrmt  # noqa: F401  (registers mmrmt:: config bases)
from mmengine.config import Config
from mmrmt.utils import build_model

assert mmrmt.__file__.startswith(sys.argv[1]), mmrmt.__file__
for config in sys.argv[2:]:
    cfg = Config.fromfile(config)
    cfg.model.backbone.init_cfg = None
    model = build_model(cfg)
    print(config, round(sum(p.numel() for p in model.parameters()) / 1e6, 2))
"""


def tracked_copy(destination: Path) -> Path:
    """The checkout's committed and staged files (what a clone holds), without build leftovers."""
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in files:
        if (REPO / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, destination / name)
    return destination


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory):
    """A wheel of this checkout, installed into a folder of its own: (site folder, work folder)."""
    root = tmp_path_factory.mktemp("wheel")
    source = tracked_copy(root / "source")
    build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run([*build, str(source), "-w", str(root / "dist")], check=True)
    [wheel] = (root / "dist").glob("mmrmt-*.whl")
    site = root / "site"
    install = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site)]
    subprocess.run([*install, str(wheel)], check=True)
    work = Path("/tmp") / f"mmrmt-user-{os.getpid()}"
    work.mkdir(exist_ok=True)
    yield site, work
    shutil.rmtree(work, ignore_errors=True)


def run_outside(site: Path, work: Path, *command: str) -> subprocess.CompletedProcess:
    """Run ``command`` in ``work`` with the wheel's mmrmt importable and the checkout not."""
    env = dict(os.environ, PYTHONPATH=str(site), OMP_NUM_THREADS="1")
    return subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)


def test_the_wheel_carries_configs_tools_and_the_model_index(installed_wheel):
    site, _ = installed_wheel
    mim = site / "mmrmt" / ".mim"
    for path in ("configs/det/maskrcnn_rmt_s_coco.py", "tools/train.py", "model-index.yml"):
        assert (mim / path).is_file() and not (mim / path).is_symlink()
    assert (mim / "configs/det/maskrcnn_metafile.yml").is_file()


def test_user_configs_from_tmp_inherit_the_installed_wheels_configs(installed_wheel):
    site, work = installed_wheel
    det, seg = work / "my_det.py", work / "my_seg.py"
    det.write_text("_base_ = 'mmrmt::det/maskrcnn_rmt_s_coco.py'\n")
    seg.write_text("_base_ = 'mmrmt::seg/upernet_rmt_s_ade20k.py'\n")
    script = textwrap.dedent(_OUTSIDE)
    result = run_outside(site, work, sys.executable, "-c", script, str(site), str(det), str(seg))
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"{det} 45.57" in result.stdout and f"{seg} 55.72" in result.stdout


def test_the_wheels_tools_make_toy_data_outside_the_checkout(installed_wheel):
    site, work = installed_wheel
    tool = site / "mmrmt" / ".mim" / "tools" / "make_toy_data.py"
    result = run_outside(site, work, sys.executable, str(tool), "--out", str(work / "data"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert (work / "data/toy_coco/annotations/instances_train.json").is_file()


def wheel_tool(site: Path, name: str) -> str:
    """The installed wheel's copy of ``tools/<name>``."""
    return str(site / "mmrmt" / ".mim" / "tools" / name)


def one_short_epoch(train_images: int, evaluated_images: int) -> list:
    """``--cfg-options`` that cut the toy demo config to one epoch over the first images."""
    return [
        "train_cfg.max_epochs=1",
        f"train_dataloader.dataset.indices={train_images}",
        f"val_dataloader.dataset.indices={evaluated_images}",
        f"test_dataloader.dataset.indices={evaluated_images}",
    ]


def test_the_wheels_toy_demo_runs_outside_the_checkout(installed_wheel):
    site, work = installed_wheel
    shrink = one_short_epoch(8, 4)  # the real demo config: 2 steps, 4 evaluated images
    command = [sys.executable, wheel_tool(site, "toy_demo.py"), "mmrmt::det/maskrcnn_rmt_t_toy.py"]
    command += ["--work-dir", "demo", "--num-images", "2", "--cfg-options", *shrink]
    result = run_outside(site, work, *command)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    summary = json.loads((work / "demo" / "summary.json").read_text())
    assert set(summary["test_metrics"]) == {"coco/bbox_mAP", "coco/segm_mAP"}
    assert len(summary["pictures"]) == 2 and (work / "demo" / "curves.png").is_file()
    assert (work / "data" / "toy_coco" / "annotations" / "instances_val.json").is_file()


def test_the_wheels_vis_gallery_draws_outside_the_checkout(installed_wheel):
    site, work = installed_wheel
    command = [sys.executable, wheel_tool(site, "vis_all.py"), "--out", "vis"]
    result = run_outside(site, work, *command, "--erf-size", "64", "--attention-size", "96")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    for name in ("decay_stage1.png", "attention_astronaut.png", "erf.png", "erf_summary.json"):
        assert (work / "vis" / name).is_file(), name


def test_the_wheels_benchmark_runs_outside_the_checkout(installed_wheel):
    site, work = installed_wheel
    command = [sys.executable, wheel_tool(site, "benchmark.py"), "--arch", "t"]
    command += ["--size", "64", "64"]
    result = run_outside(site, work, *command, "--warmup", "0", "--repeats", "1", "--threads", "1")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "swin" in result.stdout.lower() and "MiB" in result.stdout


def test_mim_trains_tests_and_searches_the_installed_wheel(installed_wheel):
    site, work = installed_wheel
    mim = str(Path(sys.executable).with_name("mim"))
    toy = run_outside(site, work, sys.executable, wheel_tool(site, "make_toy_data.py"))
    assert toy.returncode == 0, toy.stderr[-3000:]
    config = "configs/det/maskrcnn_rmt_t_toy.py"  # found in the package's .mim by mim
    shrink = one_short_epoch(4, 2)
    train = [mim, "train", "mmrmt", config, "--gpus", "0", "--work-dir", "mim_run"]
    result = run_outside(site, work, *train, "--cfg-options", *shrink)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    printed = result.stdout.replace("\n", "")  # mim wraps its messages
    assert f"will use {site / 'mmrmt' / '.mim' / config}" in printed  # the wheel's config...
    assert wheel_tool(site, "train.py") in printed  # ...and train.py
    checkpoint = work / "mim_run" / "epoch_1.pth"
    assert checkpoint.is_file()
    test = [mim, "test", "mmrmt", config, "--gpus", "0", "--checkpoint", str(checkpoint)]
    result = run_outside(site, work, *test, "--work-dir", "mim_test", "--cfg-options", *shrink)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "coco/segm_mAP" in result.stdout
    search = run_outside(site, work, mim, "search", "mmrmt", "--field", "parameters")
    assert search.returncode == 0, search.stderr[-3000:]
    assert "maskrcnn_rmt_s_coco" in search.stdout and "45.57" in search.stdout
