"""What the tools share: configs, their models and weights, options, file checks, user errors.

mmdet keeps the logic of its tools in ``mmdet/utils``; so does mmrmt, and ``tools/*.py`` stay
argument parsing plus calls into the package.
"""

from .arguments import add_config_args, add_launcher_args, parse_cfg_options, set_local_rank_env
from .config import (
    SCOPES,
    build_model,
    build_runner,
    config_scope,
    load_config,
    scope_registry,
    set_work_dir,
)
from .data_files import check_checkpoint_file, check_data_files
from .errors import USER_ERRORS, UserError, debug_requested, describe_error, run_with_user_errors
from .model_loading import check_weights_fit, load_model, load_rmt, load_weights

__all__ = [
    "SCOPES",
    "USER_ERRORS",
    "UserError",
    "add_config_args",
    "add_launcher_args",
    "build_model",
    "build_runner",
    "check_checkpoint_file",
    "check_data_files",
    "check_weights_fit",
    "config_scope",
    "debug_requested",
    "describe_error",
    "load_config",
    "load_model",
    "load_rmt",
    "load_weights",
    "parse_cfg_options",
    "run_with_user_errors",
    "scope_registry",
    "set_local_rank_env",
    "set_work_dir",
]
