"""Shared fixtures: deterministic seeds and small RMT builds."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def randomize_buffers_and_norms(model: torch.nn.Module) -> None:
    """Give BN/LN/layer-scale non-trivial values so equivalence tests exercise them."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.running_mean.copy_(
                    torch.randn(module.num_features, generator=generator) * 0.1
                )
                module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
            if isinstance(module, (torch.nn.LayerNorm, torch.nn.modules.batchnorm._BatchNorm)):
                module.weight.copy_(1 + 0.1 * torch.randn(module.weight.shape, generator=generator))
                module.bias.copy_(0.1 * torch.randn(module.bias.shape, generator=generator))
        for name, param in model.named_parameters():
            if name.endswith(("gamma_1", "gamma_2")):
                param.copy_(0.5 + 0.1 * torch.randn(param.shape, generator=generator))
