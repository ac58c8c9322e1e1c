"""Latency, throughput and peak memory of RMT's fast MaSA, its reference form and Swin-T.

    python tools/benchmark.py --arch s --size 800 1216                  # backbones, inference
    python tools/benchmark.py --arch s --size 512 512 --batch 2 --mode train
    python tools/benchmark.py --config configs/det/maskrcnn_rmt_s_coco.py --size 800 1216
    python tools/benchmark.py --arch s t --device cuda --mode infer train

Candidates, all on the same input:

* ``RMT-<arch> fast``: this project's RMT (``attn_impl='fast'``);
* ``RMT-<arch> reference``: the same model object, hence the same weights, switched to the
  step-by-step formulation with ``set_attention_impl('reference')``;
* ``Swin-T``: mmdet's ``SwinTransformer`` with the Swin-T settings (96 channels, depths 2-2-6-2,
  window 7). With ``--config`` the whole model is built from the config, and the Swin-T
  candidate is the same config with the backbone replaced (neck/head input channels adjusted).

Method. ``--mode infer`` runs ``eval()`` under ``no_grad``; ``--mode train`` runs ``train()``,
forward plus backward of a scalar loss (the sum of the outputs' means for a backbone, the model's
own losses for a config), with the gradients cleared between steps outside the timed region.
After ``--warmup`` steps of each candidate, ``--repeats`` rounds run every candidate once per
round, interleaved, so a change in the machine's load hits all of them; the table gives the
median (and the minimum) wall time, synchronising CUDA around each step, and the median process
CPU time of a step (all threads), which other work on a shared machine disturbs far less.

Peak memory: on CUDA, ``torch.cuda.max_memory_allocated`` during one step minus the memory
allocated before it. On CPU, allocator-level tracing (``tracemalloc``) does not see torch's
buffers, and a process's high-water mark cannot be split between candidates sharing it, so each
candidate runs one step in a fresh subprocess that reports how far its resident set (``VmHWM``,
reset through ``/proc/self/clear_refs``; ``ru_maxrss`` where that is unavailable) rose above the
resident set before the step. That counts everything the step touched (activations, kernel
workspaces, cached tables), as the operating system sees it.
"""

import argparse
import copy
import importlib
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from mmrmt.cli import UserError, add_config_args, config_scope, load_config, run_tool
from mmrmt.models import RMT, resolve_arch
from mmrmt.models.layers import RetentionPosition

#: mmdet's Swin-T (``mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py``); mmseg's Swin takes the same keys.
SWIN_T = dict(
    type="SwinTransformer",
    embed_dims=96,
    depths=[2, 2, 6, 2],
    num_heads=[3, 6, 12, 24],
    window_size=7,
    mlp_ratio=4,
    qkv_bias=True,
    qk_scale=None,
    drop_rate=0.0,
    attn_drop_rate=0.0,
    drop_path_rate=0.2,
    patch_norm=True,
    out_indices=(0, 1, 2, 3),
    with_cp=False,
)
SWIN_T_DIMS = [96, 192, 384, 768]
IMPLS = ("fast", "reference", "swin")
SWIN_BACKBONE_GROUP = "backbones"
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class Candidate:
    """One model to time.

    Attributes:
        name (str): Row label, e.g. ``'RMT-S fast'``.
        group (str): Candidates compared with each other (one arch or config; the Swin-T
            backbone has a group of its own and is the baseline of every arch).
        impl (str): ``'fast'``, ``'reference'`` or ``'swin'``.
        build (Callable): Returns ``(model, step)``: ``step(train)`` runs one step on the model
            and returns the loss (train) or the outputs (inference).
        prepare (Callable): Called before each step of this candidate (e.g. switches the MaSA
            implementation of a model shared with another candidate).
    """

    name: str
    group: str
    impl: str
    build: Callable[[], Tuple[nn.Module, Callable[[bool], object]]]
    prepare: Callable[[nn.Module], None] = lambda model: None
    times: Dict[str, List[Tuple[float, float]]] = field(default_factory=dict)

    @property
    def backbone(self) -> bool:
        """Whether this is a bare backbone (compared with the Swin-T backbone)."""
        return self.group.endswith(" backbone") or self.group == SWIN_BACKBONE_GROUP


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Command-line options; see the module docstring."""
    parser = argparse.ArgumentParser(
        description="Benchmark RMT (fast/reference MaSA) against Swin-T.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--arch", nargs="+", default=[], help="RMT presets: t s b l")
    parser.add_argument("--config", nargs="+", default=[], help="whole-model configs")
    parser.add_argument("--size", nargs=2, type=int, default=[800, 1216], metavar=("H", "W"))
    parser.add_argument(
        "--batch", type=int, default=1, help="images per step (training a segmentor needs >= 2)"
    )
    parser.add_argument("--mode", nargs="+", choices=["infer", "train"], default=["infer"])
    parser.add_argument("--impls", nargs="+", choices=IMPLS, default=list(IMPLS))
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp32")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per candidate")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--compile", action="store_true", help="wrap models in torch.compile")
    parser.add_argument(
        "--full-mask-limit",
        type=float,
        default=None,
        metavar="MIB",
        help="largest full-MaSA decay mask to cache (default: mmrmt's FULL_MASK_LIMIT); "
        "0 builds every full mask blockwise",
    )
    parser.add_argument("--no-memory", action="store_true", help="skip peak-memory measurement")
    parser.add_argument("--output", help="also append the Markdown report to this file")
    parser.add_argument("--seed", type=int, default=0)
    # Internal: measure one candidate's CPU memory in a fresh process (see the docstring).
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    add_config_args(parser)
    args = parser.parse_args(argv)
    if not args.arch and not args.config:
        args.arch = ["s"]
    return args


# -- inputs and steps --------------------------------------------------------------------------
def backbone_step(model: nn.Module, images: torch.Tensor) -> Callable[[bool], object]:
    """One forward (and backward when training) of a backbone on ``images``."""

    def step(train: bool):
        if not train:
            with torch.no_grad():
                return model(images)
        outs = model(images)
        loss = sum(out.float().mean() for out in outs)
        loss.backward()
        return loss

    return step


def config_inputs(scope: str, cfg, args: argparse.Namespace) -> dict:
    """A packed batch of random images with random annotations for ``mode='loss'/'predict'``."""
    height, width = args.size
    if scope == "mmdet":
        from mmdet.testing import demo_mm_inputs

        roi_head = cfg.model.get("roi_head") or {}
        with_mask = any("mask_head" in stage for stage in _as_list(roi_head))
        return demo_mm_inputs(
            batch_size=args.batch,
            image_shapes=(3, height, width),
            num_items=[5] * args.batch,
            num_classes=2,  # labels drawn from [1, num_classes)
            with_mask=with_mask,
        )
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    num_classes = cfg.model.decode_head.num_classes
    inputs, samples = [], []
    for _ in range(args.batch):
        inputs.append(torch.randint(0, 256, (3, height, width), dtype=torch.uint8))
        sample = SegDataSample(metainfo=dict(img_shape=(height, width), ori_shape=(height, width)))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, num_classes, (1, height, width)))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def config_step(model: nn.Module, packed: dict) -> Callable[[bool], object]:
    """One ``predict`` or ``loss``+backward step of a detector/segmentor on a packed batch."""
    batches = {train: model.data_preprocessor(copy.deepcopy(packed), train) for train in (0, 1)}

    def step(train: bool):
        data = batches[train]
        if not train:
            with torch.no_grad():
                return model(**data, mode="predict")
        loss, _ = model.parse_losses(model(**data, mode="loss"))
        loss.backward()
        return loss

    return step


# -- candidates --------------------------------------------------------------------------------
def _on_device(model: nn.Module, args: argparse.Namespace) -> nn.Module:
    if args.full_mask_limit is not None:
        for module in model.modules():
            if isinstance(module, RetentionPosition):
                module.full_mask_limit = int(args.full_mask_limit * 2**20)
    return model.to(device=args.device, dtype=DTYPES[args.dtype])


def _images(args: argparse.Namespace) -> torch.Tensor:
    generator = torch.Generator().manual_seed(args.seed)
    images = torch.randn(args.batch, 3, *args.size, generator=generator)
    return images.to(device=args.device, dtype=DTYPES[args.dtype])


def _shared(build: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
    """Build once: the fast and reference candidates time one model object (same weights)."""
    cache: List[nn.Module] = []

    def get() -> nn.Module:
        if not cache:
            cache.append(build())
        return cache[0]

    return get


def _set_impl(impl: str) -> Callable[[nn.Module], None]:
    def prepare(model: nn.Module) -> None:
        for module in model.modules():
            if isinstance(module, RMT):
                module.set_attention_impl(impl)

    return prepare


def arch_candidates(arch: str, args: argparse.Namespace) -> List[Candidate]:
    """RMT-<arch> fast and reference, timing one shared backbone (same weights)."""

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
            prepare=_set_impl(impl),
        )
        for impl in args.impls
        if impl != "swin"
    ]


def swin_candidate(args: argparse.Namespace) -> Candidate:
    """mmdet's Swin-T backbone, the baseline of every ``--arch`` row."""

    def build_swin() -> nn.Module:
        from mmdet.models.backbones import SwinTransformer

        torch.manual_seed(args.seed)
        model = SwinTransformer(**{k: v for k, v in SWIN_T.items() if k != "type"})
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


def _with_images(build: Callable[[], nn.Module], args: argparse.Namespace):
    def build_with_step():
        model = build()
        return model, backbone_step(model, _images(args))

    return build_with_step


def swin_config(cfg, out_indices: Sequence[int], rmt_dims: List[int]):
    """The same config with a Swin-T backbone, the layers that read its outputs adjusted."""
    cfg = copy.deepcopy(cfg)
    swin_dims = [SWIN_T_DIMS[index] for index in out_indices]
    cfg.model.backbone = dict(SWIN_T, out_indices=tuple(out_indices))

    def adjust(node) -> None:
        if isinstance(node, dict):
            channels = node.get("in_channels")
            if isinstance(channels, (list, tuple)) and list(channels) == rmt_dims:
                node["in_channels"] = list(swin_dims)
            elif isinstance(channels, int) and isinstance(node.get("in_index"), int):
                if channels == rmt_dims[node["in_index"]]:
                    node["in_channels"] = swin_dims[node["in_index"]]
            for key, value in node.items():
                if key != "backbone":
                    adjust(value)
        elif isinstance(node, (list, tuple)):
            for item in node:
                adjust(item)

    adjust(cfg.model)
    return cfg


def config_candidates(path: str, args: argparse.Namespace) -> List[Candidate]:
    """The config's model with fast and reference MaSA, and with a Swin-T backbone."""
    from mmengine.logging import MMLogger
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import init_default_scope

    if args.dtype != "fp32":
        raise UserError("--dtype bf16/fp16 applies to --arch backbones only, not to --config")
    cfg = load_config(path, args.cfg_options)
    scope = config_scope(cfg)
    init_default_scope(scope)
    # init_weights() logs every parameter at INFO level; keep the report readable.
    MMLogger.get_instance("mmengine").setLevel(logging.WARNING)
    registry = importlib.import_module(f"{scope}.registry").MODELS
    backbone = cfg.model.backbone
    if backbone.get("type") != "RMT":
        raise UserError(f"{path}: model.backbone.type is {backbone.get('type')!r}, not 'RMT'")
    # Random weights: benchmarking needs no checkpoint.
    backbone.init_cfg = None
    out_indices = list(backbone.get("out_indices", (0, 1, 2, 3)))
    dims = resolve_arch(backbone.get("arch", "t"))["embed_dims"]
    packed = config_inputs(scope, cfg, args)
    group = os.path.splitext(os.path.basename(path))[0]

    def build(model_cfg) -> Callable[[], nn.Module]:
        def make() -> nn.Module:
            torch.manual_seed(args.seed)
            model = revert_sync_batchnorm(registry.build(model_cfg))
            model.init_weights()
            return _on_device(model, args)

        return make

    rmt = _shared(build(cfg.model))
    builders = {
        "fast": rmt,
        "reference": rmt,
        "swin": build(swin_config(cfg, out_indices, [dims[i] for i in out_indices]).model),
    }

    def with_step(make: Callable[[], nn.Module]):
        def build_with_step():
            model = make()
            return model, config_step(model, _packed_on_device(packed, args))

        return build_with_step

    names = {"fast": f"{group} fast", "reference": f"{group} reference"}
    return [
        Candidate(
            name=names.get(impl, f"{group} with Swin-T"),
            group=group,
            impl=impl,
            build=with_step(builders[impl]),
            prepare=_set_impl(impl) if impl != "swin" else (lambda model: None),
        )
        for impl in args.impls
    ]


def _packed_on_device(packed: dict, args: argparse.Namespace) -> dict:
    packed = copy.deepcopy(packed)
    packed["inputs"] = [image.to(args.device) for image in packed["inputs"]]
    packed["data_samples"] = [sample.to(args.device) for sample in packed["data_samples"]]
    return packed


def all_candidates(args: argparse.Namespace) -> List[Candidate]:
    """Candidates of every ``--arch`` and ``--config``, in command-line order."""
    candidates = []
    for arch in args.arch:
        candidates += arch_candidates(arch, args)
    if args.arch and "swin" in args.impls and swin_available():
        candidates.append(swin_candidate(args))
    for path in args.config:
        candidates += config_candidates(path, args)
    return candidates


# -- measuring ---------------------------------------------------------------------------------
def synchronize(device: str) -> None:
    """Wait for queued CUDA work so wall-clock time covers it."""
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


class Runner:
    """Builds each candidate once and runs its steps in train or eval mode."""

    def __init__(self, candidates: List[Candidate], args: argparse.Namespace) -> None:
        self.args = args
        self.built = {}
        for candidate in candidates:
            model, step = candidate.build()
            if args.compile:
                model.compile()  # in place: the step closures keep calling the module
            self.built[candidate.name] = (model, step)

    def run(self, candidate: Candidate, train: bool) -> Tuple[float, float]:
        """One step of ``candidate``; returns its wall time and its process CPU time (s)."""
        model, step = self.built[candidate.name]
        model.train(train)
        candidate.prepare(model)
        synchronize(self.args.device)
        start, start_cpu = time.perf_counter(), time.process_time()
        step(train)
        synchronize(self.args.device)
        elapsed, elapsed_cpu = time.perf_counter() - start, time.process_time() - start_cpu
        if train:
            model.zero_grad(set_to_none=True)
        return elapsed, elapsed_cpu


def time_candidates(candidates: List[Candidate], runner: Runner, mode: str) -> None:
    """Warm up, then time interleaved rounds; fills ``candidate.times[mode]`` with
    (wall, CPU) pairs."""
    train = mode == "train"
    for candidate in candidates:
        for _ in range(runner.args.warmup):
            runner.run(candidate, train)
    for candidate in candidates:
        candidate.times[mode] = []
    for _ in range(runner.args.repeats):
        for candidate in candidates:
            candidate.times[mode].append(runner.run(candidate, train))


def cuda_peak_memory(candidate: Candidate, runner: Runner, mode: str) -> float:
    """Peak CUDA memory (MiB) one step allocates beyond what was allocated before it."""
    device = runner.args.device
    # Tables cached during the timed steps are rebuilt inside the measured one, so the peak
    # counts them (the fast path keeps them; the reference rebuilds them every forward).
    for module in runner.built[candidate.name][0].modules():
        if isinstance(module, RetentionPosition):
            module.clear_cache()
    synchronize(device)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    runner.run(candidate, mode == "train")
    return (torch.cuda.max_memory_allocated(device) - before) / 2**20


def _resident_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _reset_high_water_mark() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def _high_water_mib(reset: bool) -> float:
    if reset:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def probe_memory(args: argparse.Namespace) -> None:
    """Child process: build one candidate, run one step, print its RSS rise as JSON."""
    name, mode = args.probe.rsplit("|", 1)
    candidate = next(c for c in all_candidates(args) if c.name == name)
    runner = Runner([candidate], args)
    before = _resident_mib()
    reset = _reset_high_water_mark()
    runner.run(candidate, mode == "train")
    print(json.dumps({"peak_mib": _high_water_mib(reset) - before}))


def cpu_peak_memory(candidate: Candidate, mode: str, argv: Sequence[str]) -> Optional[float]:
    """Run :func:`probe_memory` for ``candidate`` in a fresh interpreter."""
    command = [
        sys.executable,
        os.path.abspath(__file__),
        *argv,
        "--probe",
        f"{candidate.name}|{mode}",
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    for line in reversed(result.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)["peak_mib"]
    print(f"memory probe of {candidate.name} failed:\n{result.stderr[-2000:]}", file=sys.stderr)
    return None


# -- report ------------------------------------------------------------------------------------
def machine_description(args: argparse.Namespace) -> str:
    """CPU/GPU, cores, threads, library versions and load, for the report's header."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            cpu = next(line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line)
    except (OSError, StopIteration):
        pass
    parts = [
        f"CPU: {cpu}, {os.cpu_count()} logical cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    ]
    if args.device.startswith("cuda"):
        parts.append(f"GPU: {torch.cuda.get_device_name(args.device)}, CUDA {torch.version.cuda}")
    parts.append(f"dtype {args.dtype}, batch {args.batch}, input {args.size[0]}x{args.size[1]}")
    if args.compile:
        parts.append("torch.compile")
    if args.full_mask_limit is not None:
        parts.append(f"full-mask limit {args.full_mask_limit:g} MiB")
    return "; ".join(parts)


def load_average() -> str:
    """The 1-minute load average (other work on the machine slows every candidate)."""
    return f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "n/a"


def markdown_table(
    candidates: List[Candidate], mode: str, memory: Dict[str, Optional[float]], batch: int
) -> str:
    """One row per candidate: wall and CPU time, throughput, memory, and the ratios."""
    header = (
        "| model | mode | median (ms) | min (ms) | CPU time (ms) | images/s | peak mem (MiB) "
        "| speed-up vs reference | time vs Swin-T |\n|---|---|---|---|---|---|---|---|---|"
    )
    rows = [header]
    medians = {c.name: statistics.median(t[0] for t in c.times[mode]) for c in candidates}
    for candidate in candidates:
        median = medians[candidate.name]
        same_group = [c for c in candidates if c.group == candidate.group]
        reference = next((c for c in same_group if c.impl == "reference"), None)
        swin_groups = (candidate.group, SWIN_BACKBONE_GROUP if candidate.backbone else None)
        swin = next((c for c in candidates if c.impl == "swin" and c.group in swin_groups), None)
        speed_up = (
            f"{medians[reference.name] / median:.2f}x"
            if reference and candidate.impl != "swin"
            else ""
        )
        vs_swin = f"{median / medians[swin.name]:.2f}x" if swin else ""
        mem = memory.get(candidate.name)
        cpu = statistics.median(t[1] for t in candidate.times[mode])
        rows.append(
            f"| {candidate.name} | {mode} | {median * 1e3:.0f} | "
            f"{min(t[0] for t in candidate.times[mode]) * 1e3:.0f} | {cpu * 1e3:.0f} | "
            f"{batch / median:.2f} | {'' if mem is None else f'{mem:.0f}'} | {speed_up} | "
            f"{vs_swin} |"
        )
    return "\n".join(rows)


def benchmark(args: argparse.Namespace, argv: Sequence[str]) -> None:
    """Time every candidate in every mode and print (and optionally save) the report."""
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda given but torch sees no CUDA device")
    if args.probe:
        probe_memory(args)
        return
    candidates = all_candidates(args)
    runner = Runner(candidates, args)
    load_before = load_average()
    sections = [f"Machine: {machine_description(args)}"]
    for mode in args.mode:
        time_candidates(candidates, runner, mode)
        memory: Dict[str, Optional[float]] = {}
        if not args.no_memory:
            for candidate in candidates:
                if args.device.startswith("cuda"):
                    memory[candidate.name] = cuda_peak_memory(candidate, runner, mode)
                else:
                    memory[candidate.name] = cpu_peak_memory(candidate, mode, argv)
        sections.append(markdown_table(candidates, mode, memory, args.batch))
    memory_method = (
        "peak CUDA memory allocated by one step, position tables included"
        if args.device.startswith("cuda")
        else "peak resident-set rise during one step in a fresh process"
    )
    sections.append(
        f"Median of {args.repeats} interleaved rounds after {args.warmup} warm-up step(s) each; "
        f"memory: {memory_method}; "
        f"1-min load average {load_before} before, {load_average()} after. "
        f"Command: `python tools/benchmark.py {' '.join(argv)}`"
    )
    report = "\n\n".join(sections)
    print(report)
    if args.output:
        with open(args.output, "a") as out:
            out.write(report + "\n\n")


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    return run_tool(lambda parsed: benchmark(parsed, argv), args)


if __name__ == "__main__":
    sys.exit(main())
