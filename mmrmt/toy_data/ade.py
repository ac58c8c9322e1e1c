"""Toy ADE20K-layout semantic segmentation dataset (placeholder until the seg issue lands)."""


def make_toy_ade(out_dir: str, force: bool = False) -> str:
    """Write the toy ADE set to ``out_dir``; returns a one-line summary."""
    return f"toy ADE: not generated yet ({out_dir})"
