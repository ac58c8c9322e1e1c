"""Latency, throughput and peak memory of RMT's fast MaSA, its reference form and Swin-T.

``tools/benchmark.py`` parses the options and calls :func:`run_benchmark`; the modules here:
:mod:`.options` (the command line), :mod:`.steps` (inputs and one step of a model),
:mod:`.candidates` (what is compared), :mod:`.timing`, :mod:`.memory` (with the entry point
:mod:`.memory_probe`) and :mod:`.markdown_report`.

Candidates, all on the same input:

* ``RMT-<arch> fast``: this project's RMT (``attn_impl='fast'``);
* ``RMT-<arch> reference``: the same model object, hence the same weights, switched to the
  step-by-step formulation with ``set_attention_impl('reference')``;
* ``RMT-<arch> fast-noext`` (asked for with ``--impls``): the same model, fast MaSA, with
  ``mmrmt._ext``'s kernels switched off (PyTorch's SDPA and conv backward): what the kernels
  gain;
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

from .options import add_benchmark_args, parse_benchmark_args
from .run import run_benchmark

__all__ = ["add_benchmark_args", "parse_benchmark_args", "run_benchmark"]
