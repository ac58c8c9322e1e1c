"""Checks of RMT on a CUDA device: every MaSA implementation, autocast, torch.compile, AMP.

CPU CI cannot run these; ``tools/check_cuda.py`` runs them on a GPU machine:

* attention: per arch (depths 1-2-2-1, batch 2, odd sizes), ``'fast'`` and ``'flex'`` against
  ``'reference'`` in fp32, outputs and gradients; flex with_cp;
* autocast: the same under fp16 and bf16 autocast (each arch's stage shapes compile their own
  flex kernels, so RMT-S only by default);
* compile: the compiled FlexAttention kernels and the whole backbone under ``torch.compile``
  (Inductor) over a multi-scale sequence of sizes: graph breaks, recompiles, outputs;
* amp: ``--amp --amp-dtype fp16|bf16`` training steps of Mask R-CNN and UperNet RMT-S on random
  data through mmengine's AmpOptimWrapper: finite losses, gradients close to fp32.

Each check prints one line; :func:`run_cuda_checks` returns the failures.
"""

import traceback
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch._dynamo
from mmdet.testing import demo_mm_inputs
from mmengine.optim import build_optim_wrapper
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from torch import Tensor, nn
from torch._dynamo.testing import CompileCounterWithBackend

from ..models import RMT, resolve_arch
from ..models.layers import compiled_variants
from ..utils import build_model, config_scope, load_config, load_rmt
from ..utils.train_options import AMP_DTYPES, enable_amp

#: Detection-like sizes (batch, H, W): the first two compile every variant (batch 2 and 1), the
#: others, new sizes and a square one, must not compile more.
MULTI_SCALE = [(2, 480, 640), (1, 544, 800), (2, 512, 704), (2, 608, 1024), (1, 800, 1216)]
MULTI_SCALE += [(2, 640, 640)]
AMP_CONFIGS = ["mmrmt::det/maskrcnn_rmt_s_coco.py", "mmrmt::seg/upernet_rmt_s_ade20k.py"]
#: Output and gradient error allowed under autocast, against fp32 'reference'.
AUTOCAST_TOLERANCE = {torch.float16: 2e-2, torch.bfloat16: 5e-2}
GRAD_TOLERANCE = {torch.float16: 5e-2, torch.bfloat16: 1e-1}
CHECKS = ("attention", "autocast", "compile", "amp")

failures: List[str] = []


def check(name: str, value: float, limit: float) -> None:
    """Print ``name: value`` and record a failure when ``value`` exceeds ``limit``."""
    ok = value <= limit
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {value:.3g} (limit {limit:.3g})", flush=True)
    if not ok:
        failures.append(name)


def guarded(name: str, check_fn: Callable, *args) -> None:
    """Run ``check_fn(*args)``; an exception is printed and recorded as a failure of ``name``."""
    try:
        check_fn(*args)
    except Exception as error:  # one broken check must not hide the others' results
        traceback.print_exc()
        print(f"FAIL {name}: {type(error).__name__}: {error}", flush=True)
        failures.append(f"{name} ({type(error).__name__})")


def relative_error(got: Tensor, want: Tensor) -> float:
    """||got - want|| / ||want|| in float64."""
    return ((got.double() - want.double()).norm() / want.double().norm()).item()


def gradients(model: nn.Module) -> Tensor:
    """Every parameter gradient, flattened into one float32 vector (zeros where None)."""
    return torch.cat(
        [
            (p.grad if p.grad is not None else torch.zeros_like(p)).float().flatten()
            for p in model.parameters()
        ]
    )


def build_backbones(arch: str, impls: List[str], **kwargs) -> Dict[str, RMT]:
    """RMTs (depths 1-2-2-1) in training mode sharing one set of random weights, one per
    implementation, on the GPU."""
    cfg = dict(resolve_arch(arch), depths=[1, 2, 2, 1])
    models = {
        impl: load_rmt(cfg, mode="train", drop_path_rate=0.0, attn_impl=impl, **kwargs)
        for impl in impls
    }
    first = models[impls[0]]
    for model in models.values():
        model.load_state_dict(first.state_dict())
    return {impl: model.cuda() for impl, model in models.items()}


def run_backbone(
    model: RMT, images: Tensor, dtype: Optional[torch.dtype] = None
) -> Tuple[List[Tensor], Tensor]:
    """Outputs and parameter gradients of one forward/backward, autocast to ``dtype`` if given."""
    model.zero_grad(set_to_none=True)
    with torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None):
        outs = model(images)
    sum(out.float().square().mean() for out in outs).backward()
    return [out.detach().float() for out in outs], gradients(model)


def check_attention(arch: str, sizes: List[Tuple[int, int]]) -> None:
    """'fast' and 'flex' against 'reference' in fp32, outputs and gradients; flex with_cp."""
    models = build_backbones(arch, ["reference", "fast", "flex"])
    for height, width in sizes:
        images = torch.randn(2, 3, height, width, device="cuda")
        want, want_grads = run_backbone(models["reference"], images)
        for impl in ("fast", "flex"):
            got, grads = run_backbone(models[impl], images)
            tag = f"{arch} {impl} 2x{height}x{width} fp32"
            check(f"{tag} outputs", max(map(relative_error, got, want)), 1e-4)
            check(f"{tag} gradients", relative_error(grads, want_grads), 1e-4)
    checkpointed = build_backbones(arch, ["flex"], with_cp=True)["flex"]
    checkpointed.load_state_dict(models["flex"].state_dict())
    images = torch.randn(2, 3, *sizes[0], device="cuda")
    _, want_grads = run_backbone(models["flex"], images)
    _, grads = run_backbone(checkpointed, images)
    check(f"{arch} flex with_cp gradients", relative_error(grads, want_grads), 1e-4)


def check_autocast(arch: str, size: Tuple[int, int]) -> None:
    """'fast' and 'flex' under fp16 and bf16 autocast against the fp32 'reference'."""
    models = build_backbones(arch, ["reference", "fast", "flex"])
    images = torch.randn(2, 3, *size, device="cuda")
    want, want_grads = run_backbone(models["reference"], images)
    for impl in ("fast", "flex"):
        for dtype, tolerance in AUTOCAST_TOLERANCE.items():
            got, grads = run_backbone(models[impl], images, dtype)
            tag = f"{arch} {impl} 2x{size[0]}x{size[1]} {str(dtype)[6:]} autocast"
            check(f"{tag} outputs", max(map(relative_error, got, want)), tolerance)
            check(f"{tag} gradients", relative_error(grads, want_grads), GRAD_TOLERANCE[dtype])


def check_flex_compiles() -> None:
    """The compiled flex kernels compile per stage shape, never per input size."""
    torch._dynamo.reset()
    flex = build_backbones("s", ["flex"])["flex"].eval()
    for index, (batch, height, width) in enumerate(MULTI_SCALE):
        with torch.no_grad():
            flex(torch.randn(batch, 3, height, width, device="cuda"))
        if index == 1:
            first = compiled_variants()
    print(f"     flex kernels, RMT-S: {first} variants after batch 2 and 1, then")
    for kernel, count in compiled_variants().items():
        check(f"flex {kernel} kernel: new variants over new sizes", count - first[kernel], 0)


def check_compiled_backbone() -> None:
    """The whole backbone under torch.compile (Inductor) over multi-scale sizes."""
    for impl in ("fast", "flex"):
        torch._dynamo.reset()
        model = build_backbones("s", [impl])[impl].eval()
        images = torch.randn(MULTI_SCALE[0][0], 3, *MULTI_SCALE[0][1:], device="cuda")
        with torch.no_grad():
            breaks = torch._dynamo.explain(model)(images).graph_break_count
        check(f"compiled backbone ({impl}): graph breaks", breaks, 0)
        torch._dynamo.reset()
        counter = CompileCounterWithBackend("inductor")
        compiled = torch.compile(model, backend=counter)
        worst = 0.0
        for batch, height, width in MULTI_SCALE:
            images = torch.randn(batch, 3, height, width, device="cuda")
            with torch.no_grad():
                worst = max(worst, *map(relative_error, compiled(images), model(images)))
        check(f"compiled backbone ({impl}): output rel err vs eager", worst, 1e-4)
        compiles = counter.frame_count
        check(f"compiled backbone ({impl}): compiles over multi-scale sizes", compiles, 3)


def random_batch(scope: str, batch: int, height: int, width: int) -> dict:
    """A training batch of random images and annotations, as the config's dataloader gives it."""
    if scope == "mmdet":
        return demo_mm_inputs(batch, (3, height, width), num_items=[4] * batch, with_mask=True)
    samples = []
    for _ in range(batch):
        shape = (height, width)
        sample = SegDataSample(metainfo=dict(img_shape=shape, ori_shape=shape, pad_shape=shape))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, 150, (1, height, width)))
        samples.append(sample)
    inputs = [torch.randint(0, 256, (3, height, width), dtype=torch.uint8) for _ in range(batch)]
    return dict(inputs=inputs, data_samples=samples)


def loss_gradients(model: nn.Module, data: dict, dtype: Optional[torch.dtype], keep: Callable):
    """Backbone gradients of the losses named ``keep(name)``, autocast to ``dtype`` if given.

    The seed is reset so that the samplers draw the same anchors and pixels every time; the loss is
    scaled by 1024 (and the gradients back) so that fp16 gradients do not underflow.
    """
    model.zero_grad(set_to_none=True)
    torch.manual_seed(0)
    processed = model.data_preprocessor(data, True)
    with torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None):
        losses = model(**processed, mode="loss")
    loss, _ = model.parse_losses({name: value for name, value in losses.items() if keep(name)})
    (loss.float() * 1024).backward()
    return gradients(model.backbone) / 1024


def check_amp_training(config: str) -> None:
    """AMP training steps through ``enable_amp`` (fp16, bf16) and their gradients vs fp32."""
    cfg = load_config(config, {"model.backbone.init_cfg": None})  # mmrmt:: names resolve
    scope = config_scope(cfg)
    torch.manual_seed(0)
    model = build_model(cfg).cuda().train()
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    data = random_batch(scope, 2, 512, 512 if scope == "mmseg" else 640)
    # Mask R-CNN's RoI head samples proposals, which depend on the predictions: compare the RPN
    # losses, whose targets depend on the annotations only.
    keep = (lambda name: "rpn" in name) if scope == "mmdet" else (lambda name: True)
    want = loss_gradients(model, data, None, keep)
    name = config.rsplit("/", 1)[-1]
    for amp_dtype, dtype_name in AMP_DTYPES.items():
        dtype = getattr(torch, dtype_name)
        # The model as --amp builds it (bf16 pools RoIs in fp32), with the same weights.
        amp_cfg = load_config(config, {"model.backbone.init_cfg": None})
        enable_amp(amp_cfg, amp_dtype)
        model = build_model(amp_cfg).cuda().train()
        model.load_state_dict(initial)
        grads = loss_gradients(model, data, dtype, keep)
        error = relative_error(grads, want)
        check(f"{name} {amp_dtype}: backbone gradients vs fp32", error, GRAD_TOLERANCE[dtype])
        wrapper = build_optim_wrapper(model, amp_cfg.optim_wrapper)
        worst = 0.0
        for _ in range(3):
            log_vars = model.train_step(data, wrapper)
            finite = all(torch.isfinite(torch.as_tensor(v)).all() for v in log_vars.values())
            worst = max(worst, 0.0 if finite else float("inf"))
        print(f"     {name} {amp_dtype}: loss {torch.as_tensor(log_vars['loss']).item():.3f}")
        check(f"{name} {amp_dtype}: non-finite losses in 3 AMP steps", worst, 0)


def run_cuda_checks(
    checks: Sequence[str], archs: Sequence[str], autocast_archs: Sequence[str], sizes: Sequence[str]
) -> List[str]:
    """Run the chosen checks on the current CUDA device (TF32 off) and return the failures.

    Args:
        checks (Sequence[str]): Any of :data:`CHECKS`.
        archs (Sequence[str]): Presets for the fp32 attention checks.
        autocast_archs (Sequence[str]): Presets for the autocast checks.
        sizes (Sequence[str]): Input sizes as ``'HxW'``.

    Returns:
        list[str]: The names of the failed checks (empty: all passed).
    """
    failures.clear()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}", flush=True)
    torch.manual_seed(0)
    shapes = [tuple(int(n) for n in size.split("x")) for size in sizes]
    if "attention" in checks:
        for arch in archs:
            guarded(f"{arch} attention", check_attention, arch, shapes)
    if "autocast" in checks:
        for arch in autocast_archs:
            guarded(f"{arch} autocast", check_autocast, arch, shapes[0])
    if "compile" in checks:
        guarded("flex compiles", check_flex_compiles)
        guarded("compiled backbone", check_compiled_backbone)
    if "amp" in checks:
        for config in AMP_CONFIGS:
            guarded(f"AMP training {config}", check_amp_training, config)
    return list(failures)
