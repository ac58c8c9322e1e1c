"""The error every checkpoint reader and converter raises for a file it cannot use."""

from ..errors import MmrmtError


class CheckpointError(MmrmtError, RuntimeError):
    """A checkpoint that cannot be used: unreadable, unsafe, or not for this model."""
