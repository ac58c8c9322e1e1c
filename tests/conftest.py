"""Shared fixtures: deterministic seeds and small RMT builds."""

import logging
import sys

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _all_loggers() -> list:
    """Every logger: the logging module's, and mmengine's MMLoggers (kept in their own dict)."""
    loggers = [logging.getLogger()]
    loggers += [
        lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    mmengine_logging = sys.modules.get("mmengine.logging")
    if mmengine_logging is not None:
        loggers += list(mmengine_logging.MMLogger._instance_dict.values())
    return loggers


@pytest.fixture(autouse=True)
def _stream_handlers_on_open_streams():
    """Point stream handlers made under an earlier test's ``capsys`` back at sys.stderr.

    A logger created while ``capsys`` captured (an MMLogger of a Runner, torch's loggers on their
    first use) keeps that test's stream, which pytest closes when the test ends; a later test's
    log line then prints "--- Logging error ---" into its captured output.
    """
    for logger in _all_loggers():
        for handler in logger.handlers:
            stream = getattr(handler, "stream", None)
            if isinstance(handler, logging.StreamHandler) and getattr(stream, "closed", False):
                handler.stream = sys.stderr  # not setStream: it flushes the closed one


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
