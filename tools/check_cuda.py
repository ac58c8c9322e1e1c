"""Check RMT on a CUDA device: fast vs reference MaSA (fp32, AMP fp16/bf16), with_cp, caches.

CPU CI cannot run these; run this script on a GPU machine after changing the attention code:

    python tools/check_cuda.py [--archs t s b l]

Exits non-zero when any check fails.
"""

import argparse
import sys
from typing import List

import torch

from mmrmt.models import RMT, resolve_arch


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--archs", nargs="+", default=["t", "s", "b", "l"])
    parser.add_argument("--size", nargs=2, type=int, default=[200, 264], help="input H W")
    return parser.parse_args()


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    """||got - want|| / ||want|| in float64."""
    return ((got.double() - want.double()).norm() / want.double().norm()).item()


def worst_grad_error(model: RMT, baseline: RMT) -> float:
    """Worst relative gradient error over parameters with a meaningful gradient.

    Conv biases right before a training-mode BatchNorm get gradients of ~1e-12 (the norm removes
    them), whose relative error is noise; they are skipped.
    """
    pairs = [(p.grad, q.grad) for p, q in zip(model.parameters(), baseline.parameters())]
    largest = max(q.norm().item() for _, q in pairs if q is not None)
    return max(
        relative_error(p, q) for p, q in pairs if q is not None and q.norm() > 1e-6 * largest
    )


def build_pair(arch: str, device: str) -> List[RMT]:
    """A fast and a reference RMT (short depths) with the same random weights."""
    cfg = dict(resolve_arch(arch), depths=[1, 2, 2, 1])
    fast = RMT(arch=cfg, drop_path_rate=0.0, attn_impl="fast")
    fast.init_weights()
    reference = RMT(arch=cfg, drop_path_rate=0.0, attn_impl="reference")
    reference.load_state_dict(fast.state_dict())
    return [fast.to(device), reference.to(device)]


def check_arch(arch: str, size: List[int], device: str) -> List[str]:
    """Run every check for one arch; return the failures."""
    failures = []
    fast, reference = build_pair(arch, device)
    images = torch.randn(2, 3, *size, device=device)

    outs = [sum(o.float().square().mean() for o in model(images)) for model in (fast, reference)]
    for loss in outs:
        loss.backward()
    err = relative_error(outs[0], outs[1])
    grad_err = worst_grad_error(fast, reference)
    print(f"[{arch}] fp32 train: loss rel err {err:.2e}, worst grad rel err {grad_err:.2e}")
    if err > 1e-4 or grad_err > 1e-3:
        failures.append(f"{arch}: fp32 fast vs reference")

    fast.eval()
    reference.eval()
    with torch.no_grad():
        want = reference(images)
        for dtype, tolerance in ((torch.float16, 2e-2), (torch.bfloat16, 5e-2)):
            with torch.autocast("cuda", dtype=dtype):
                got = fast(images)
            worst = max(relative_error(g, w) for g, w in zip(got, want))
            print(f"[{arch}] AMP {dtype}: worst output rel err vs fp32 reference {worst:.2e}")
            if not worst < tolerance:
                failures.append(f"{arch}: AMP {dtype} error {worst:.2e}")

    checkpointed = RMT(arch=dict(resolve_arch(arch), depths=[1, 2, 2, 1]), with_cp=True)
    checkpointed.load_state_dict(fast.state_dict())
    checkpointed.to(device).train()
    fast.train()
    for model in (fast, checkpointed):
        model.zero_grad()
        sum(o.square().mean() for o in model(images)).backward()
    cp_err = worst_grad_error(checkpointed, fast)
    print(f"[{arch}] with_cp: worst grad rel err {cp_err:.2e}")
    if cp_err > 1e-4:
        failures.append(f"{arch}: with_cp gradients")
    return failures


def main() -> int:
    args = parse_args()
    if not torch.cuda.is_available():
        print("No CUDA device: nothing to check.")
        return 1
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}")
    torch.manual_seed(0)
    failures = []
    for arch in args.archs:
        failures += check_arch(arch, args.size, "cuda")
    print("FAILED: " + "; ".join(failures) if failures else "all CUDA checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
