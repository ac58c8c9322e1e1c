"""Toy COCO instance dataset (placeholder until the detection issue lands)."""


def make_toy_coco(out_dir: str, force: bool = False) -> str:
    """Write the toy COCO set to ``out_dir``; returns a one-line summary."""
    return f"toy COCO: not generated yet ({out_dir})"
