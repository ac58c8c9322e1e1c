"""torch.compile over the RMT backbone: one graph, a bounded number of recompiles across sizes.

Dynamo alone (the ``'eager'`` backend) decides graph breaks and recompiles, so these tests skip
Inductor's code generation, which takes minutes on a CPU; ``tools/check_cuda.py`` compiles with
Inductor on CUDA.
"""

import pytest
import torch
import torch._dynamo
from torch._dynamo.testing import CompileCounter

from mmrmt.models import RMT
from tests.helpers import TINY_ARCH as SMALL_ARCH

TINY_ARCH = dict(SMALL_ARCH, embed_dims=[16, 32, 64, 64])

#: A multi-scale sequence of (H, W): every size new, the last one square.
SIZES = [(64, 96), (96, 64), (72, 88), (56, 120), (80, 80)]


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def tiny_rmt(attn_impl: str = "fast") -> RMT:
    return RMT(arch=TINY_ARCH, drop_path_rate=0.0, attn_impl=attn_impl).eval()


@pytest.mark.parametrize("attn_impl", ["fast", "flex"])
def test_inference_is_one_graph_without_breaks(attn_impl):
    with torch.no_grad():
        explanation = torch._dynamo.explain(tiny_rmt(attn_impl))(torch.randn(1, 3, 64, 96))
    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert explanation.graph_count == 1


def test_training_forward_is_one_graph_without_breaks():
    model = tiny_rmt().train()
    explanation = torch._dynamo.explain(model)(torch.randn(2, 3, 64, 96))
    assert explanation.graph_break_count == 0, explanation.break_reasons


@pytest.mark.parametrize("attn_impl", ["fast", "flex"])
def test_new_input_sizes_compile_twice_then_never_again(attn_impl):
    model = tiny_rmt(attn_impl)
    counter = CompileCounter()
    compiled = torch.compile(model, backend=counter)
    with torch.no_grad():
        for height, width in SIZES:
            images = torch.randn(1, 3, height, width)
            for got, want in zip(compiled(images), model(images)):
                torch.testing.assert_close(got, want)
    # The first size compiles static shapes, the second symbolic ones, which serve the rest.
    # (A new batch size compiles once more; so do sizes past thresholds that torch guards, such
    # as the CPU convolution's choice of memory format.)
    assert counter.frame_count == 2


def test_compiled_calls_leave_the_position_caches_alone():
    model = tiny_rmt()
    compiled = torch.compile(model, backend=CompileCounter())
    with torch.no_grad():
        compiled(torch.randn(1, 3, 64, 96))
        assert all(stage.rel_pos.cached_bytes() == 0 for stage in model.layers)
        model(torch.randn(1, 3, 64, 96))
    assert all(stage.rel_pos.cached_bytes() > 0 for stage in model.layers)
