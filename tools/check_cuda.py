"""Check RMT on a CUDA device: every MaSA implementation, autocast, torch.compile, AMP training.

CPU CI cannot run these; run this script on a GPU machine after changing the attention code:

    python tools/check_cuda.py [--checks attention autocast compile amp] [--archs t s b l]
        [--autocast-archs s] [--sizes 200x264 123x187]

* attention: per arch (depths 1-2-2-1, batch 2, odd sizes), ``'fast'`` and ``'flex'`` against
  ``'reference'`` in fp32, outputs and gradients; flex with_cp;
* autocast: the same under fp16 and bf16 autocast (each arch's stage shapes compile their own
  flex kernels, so RMT-S only by default);
* compile: the compiled FlexAttention kernels and the whole backbone under ``torch.compile``
  (Inductor) over a multi-scale sequence of sizes: graph breaks, recompiles, outputs;
* amp: ``--amp --amp-dtype fp16|bf16`` training steps of Mask R-CNN and UperNet RMT-S on random
  data through mmengine's AmpOptimWrapper: finite losses, gradients close to fp32.

Prints one line per check and exits non-zero when any fails; the checks themselves are in
:mod:`mmrmt.analysis.cuda_checks`.
"""

import argparse
import sys

import torch

from mmrmt.analysis.cuda_checks import CHECKS, run_cuda_checks


def main() -> int:
    """Parse the command line, run the checks; returns the exit code."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checks", nargs="+", choices=CHECKS, default=list(CHECKS))
    parser.add_argument("--archs", nargs="+", default=["t", "s", "b", "l"], help="fp32 checks")
    parser.add_argument("--autocast-archs", nargs="+", default=["s"], help="autocast checks")
    parser.add_argument("--sizes", nargs="+", default=["200x264", "123x187"], help="H x W")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("No CUDA device: nothing to check.")
        return 1
    failures = run_cuda_checks(args.checks, args.archs, args.autocast_archs, args.sizes)
    print("FAILED: " + "; ".join(failures) if failures else "all CUDA checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
