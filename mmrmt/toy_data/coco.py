"""Toy COCO instance dataset: coloured shapes on textured backgrounds, with exact RLE masks.

Every image holds one to several circles, squares and triangles of varied sizes and rotations.
Shapes are painted in order, so a later shape occludes an earlier one; each annotation is the
*visible* part of its shape, and ``bbox`` and ``area`` are computed from that mask with
pycocotools, so the three always agree. The output is the layout mmdet's ``CocoDataset`` reads::

    out_dir/
        annotations/instances_train.json   annotations/instances_val.json
        train/000000.png ...               val/000000.png ...
"""

import json
import os
import os.path as osp
import shutil
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from ..engine.atomic_io import atomic_write_bytes

CATEGORIES: Tuple[str, ...] = ("circle", "square", "triangle")
SPLITS: Tuple[str, ...] = ("train", "val")
# Bump when the drawing changes, so an existing set from an older generator is rewritten.
GENERATOR_VERSION = 1


@dataclass(frozen=True)
class ToyCocoSpec:
    """What to generate.

    Args:
        image_size (int): Side of the square images in pixels. Default: 96.
        num_train (int): Training images. Default: 400.
        num_val (int): Validation images. Default: 50.
        max_objects (int): Most shapes per image (at least one). Default: 4.
        min_extent (float): Smallest shape extent as a fraction of the image side. Default: 0.15.
        max_extent (float): Largest shape extent as a fraction of the image side. Default: 0.45.
        min_visible (float): A shape placed so that an earlier one keeps less than this fraction
            of its area visible is placed again elsewhere. Default: 0.5.
        seed (int): Base seed; the splits use ``seed`` and ``seed + 1``. Default: 0.
    """

    image_size: int = 96
    num_train: int = 400
    num_val: int = 50
    max_objects: int = 4
    min_extent: float = 0.15
    max_extent: float = 0.45
    min_visible: float = 0.5
    seed: int = 0


def _muted_colour(rng: np.random.Generator) -> np.ndarray:
    """A low-saturation RGB colour (float32 in [0, 255]) for backgrounds."""
    grey = rng.uniform(50, 200)
    return np.clip(grey + rng.uniform(-35, 35, size=3), 0, 255).astype(np.float32)


def _vivid_colour(rng: np.random.Generator) -> np.ndarray:
    """A saturated RGB colour (float32 in [0, 255]) for shapes: any hue, so colour says nothing
    about the category."""
    hsv = np.array([[[rng.uniform(0, 180), rng.uniform(150, 255), rng.uniform(150, 255)]]])
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


def textured_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A background of smoothed noise, a linear gradient or sinusoidal stripes.

    Args:
        rng (np.random.Generator): Source of randomness.
        size (int): Image side.

    Returns:
        np.ndarray: (size, size, 3) float32 RGB image in [0, 255].
    """
    first, second = _muted_colour(rng), _muted_colour(rng)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / size
    kind = rng.integers(3)
    if kind == 0:
        noise = rng.standard_normal((size, size)).astype(np.float32)
        blend = cv2.GaussianBlur(noise, (0, 0), sigmaX=rng.uniform(1.5, 6))
        blend = (blend - blend.min()) / (np.ptp(blend) + 1e-6)
    elif kind == 1:
        angle = rng.uniform(0, 2 * np.pi)
        blend = np.cos(angle) * xs + np.sin(angle) * ys
        blend = (blend - blend.min()) / (np.ptp(blend) + 1e-6)
    else:
        angle, period = rng.uniform(0, np.pi), rng.uniform(0.08, 0.3)
        phase = (np.cos(angle) * xs + np.sin(angle) * ys) / period
        blend = 0.5 + 0.5 * np.sin(2 * np.pi * phase)
    image = first * (1 - blend[..., None]) + second * blend[..., None]
    # Pixel noise everywhere, so neither flat backgrounds nor flat shapes give a free cue.
    return image + rng.normal(0, 6, size=image.shape).astype(np.float32)


def shape_mask(rng: np.random.Generator, category: str, size: int, extent: int) -> np.ndarray:
    """Rasterise one randomly placed and rotated shape that lies fully inside the image.

    Args:
        rng (np.random.Generator): Source of randomness.
        category (str): One of :data:`CATEGORIES`.
        size (int): Image side.
        extent (int): Diameter of the shape's circumscribed circle, in pixels.

    Returns:
        np.ndarray: (size, size) uint8 mask, 1 inside the shape.
    """
    radius = extent / 2
    centre = rng.uniform(radius, size - radius, size=2)
    mask = np.zeros((size, size), np.uint8)
    if category == "circle":
        cv2.circle(mask, tuple(int(round(c)) for c in centre), int(round(radius)), 1, -1)
        return mask
    corners = {"square": 4, "triangle": 3}.get(category)
    if corners is None:
        raise ValueError(f"category must be one of {CATEGORIES}, got {category!r}")
    angles = rng.uniform(0, 2 * np.pi) + 2 * np.pi * np.arange(corners) / corners
    points = centre + radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)
    return mask


def place_shapes(rng: np.random.Generator, spec: ToyCocoSpec) -> List[Tuple[int, np.ndarray]]:
    """Choose one to ``spec.max_objects`` shapes and their positions.

    A candidate that would leave an earlier shape less than ``spec.min_visible`` of its area
    visible is redrawn a few times, then dropped, so occlusion happens but never swallows an
    object whole.

    Args:
        rng (np.random.Generator): Source of randomness.
        spec (ToyCocoSpec): Sizes and counts.

    Returns:
        list[tuple]: ``(category_index, full_mask)`` in painting order.
    """
    placed: List[Tuple[int, np.ndarray]] = []
    for _ in range(rng.integers(1, spec.max_objects + 1)):
        category = int(rng.integers(len(CATEGORIES)))
        extent = int(spec.image_size * rng.uniform(spec.min_extent, spec.max_extent))
        for _attempt in range(10):
            candidate = shape_mask(rng, CATEGORIES[category], spec.image_size, extent)
            visible = visible_masks([m for _, m in placed] + [candidate])
            if all(
                seen.sum() >= spec.min_visible * full.sum()
                for seen, (_, full) in zip(visible, placed)
            ):
                placed.append((category, candidate))
                break
    return placed


def visible_masks(full_masks: List[np.ndarray]) -> List[np.ndarray]:
    """The visible part of each shape when they are painted in list order.

    Args:
        full_masks (list[np.ndarray]): (H, W) uint8 masks, first painted first.

    Returns:
        list[np.ndarray]: (H, W) uint8 masks; each excludes every later mask.
    """
    if not full_masks:
        return []
    covered = np.zeros(full_masks[0].shape, dtype=bool)
    visible = []
    for mask in reversed(full_masks):
        visible.append((mask.astype(bool) & ~covered).astype(np.uint8))
        covered |= mask.astype(bool)
    return visible[::-1]


def render_image(
    rng: np.random.Generator, spec: ToyCocoSpec
) -> Tuple[np.ndarray, List[Tuple[int, np.ndarray]]]:
    """Draw one image.

    Args:
        rng (np.random.Generator): Source of randomness.
        spec (ToyCocoSpec): Sizes and counts.

    Returns:
        tuple: (size, size, 3) uint8 RGB image and a list of ``(category_index, visible_mask)``.
    """
    image = textured_background(rng, spec.image_size)
    placed = place_shapes(rng, spec)
    for _, mask in placed:
        # Light shading across the shape keeps its fill from being a single flat colour.
        shade = textured_background(rng, spec.image_size) - 128
        fill = _vivid_colour(rng) + 0.25 * shade
        image = np.where(mask[..., None].astype(bool), fill, image)
    masks = visible_masks([m for _, m in placed])
    objects = [(category, mask) for (category, _), mask in zip(placed, masks)]
    return np.clip(image, 0, 255).astype(np.uint8), objects


def mask_annotation(mask: np.ndarray) -> Dict:
    """COCO ``segmentation`` (compressed RLE), ``area`` and ``bbox`` of one binary mask.

    Args:
        mask (np.ndarray): (H, W) uint8 mask.

    Returns:
        dict: ``segmentation``, ``area`` (pixels) and ``bbox`` ``[x, y, w, h]``, all from the RLE.
    """
    rle = mask_utils.encode(np.asfortranarray(mask))
    area = float(mask_utils.area(rle))
    bbox = [float(v) for v in mask_utils.toBbox(rle)]
    rle["counts"] = rle["counts"].decode("ascii")
    return dict(segmentation=rle, area=area, bbox=bbox)


def build_split(spec: ToyCocoSpec, split: str, image_dir: str) -> Dict:
    """Render a split's images into ``image_dir`` and return its COCO annotation dict.

    Args:
        spec (ToyCocoSpec): What to generate.
        split (str): ``'train'`` or ``'val'`` (picks the image count and the seed).
        image_dir (str): Folder for the PNG files (created).

    Returns:
        dict: COCO instances JSON content (``info``, ``images``, ``annotations``, ``categories``).
    """
    split_index = SPLITS.index(split)
    rng = np.random.default_rng(spec.seed + split_index)
    num_images = spec.num_train if split == "train" else spec.num_val
    os.makedirs(image_dir, exist_ok=True)
    images, annotations = [], []
    for image_id in range(1, num_images + 1):
        image, objects = render_image(rng, spec)
        file_name = f"{image_id:06d}.png"
        cv2.imwrite(osp.join(image_dir, file_name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        images.append(
            dict(id=image_id, file_name=file_name, width=spec.image_size, height=spec.image_size)
        )
        for category, mask in objects:
            annotations.append(
                dict(
                    id=len(annotations) + 1,
                    image_id=image_id,
                    category_id=category + 1,
                    iscrowd=0,
                    **mask_annotation(mask),
                )
            )
    return dict(
        info=dict(description="mmrmt toy COCO", version=GENERATOR_VERSION, spec=asdict(spec)),
        images=images,
        annotations=annotations,
        categories=[
            dict(id=index + 1, name=name, supercategory="shape")
            for index, name in enumerate(CATEGORIES)
        ],
    )


def _complete_set(out_dir: str, spec: ToyCocoSpec) -> Optional[List[Dict]]:
    """The annotation dicts of a complete set made by this generator and spec, else None."""
    contents = []
    for split in SPLITS:
        ann_file = osp.join(out_dir, "annotations", f"instances_{split}.json")
        if not osp.isfile(ann_file):
            return None
        with open(ann_file) as f:
            content = json.load(f)
        info = content.get("info", {})
        if info.get("version") != GENERATOR_VERSION or info.get("spec") != asdict(spec):
            return None
        image_files = (osp.join(out_dir, split, image["file_name"]) for image in content["images"])
        if not all(osp.isfile(path) for path in image_files):
            return None
        contents.append(content)
    return contents


def _summary(out_dir: str, contents: List[Dict], verb: str) -> str:
    """One line: where, how many images and instances per split."""
    counts = ", ".join(
        f"{split} {len(c['images'])} images / {len(c['annotations'])} instances"
        for split, c in zip(SPLITS, contents)
    )
    return f"toy COCO: {verb} {out_dir} ({counts}; classes {', '.join(CATEGORIES)})"


def make_toy_coco(out_dir: str, force: bool = False, spec: Optional[ToyCocoSpec] = None) -> str:
    """Write the toy COCO set to ``out_dir`` unless an identical one is already there.

    Annotation files are written after the images, so an interrupted run is redone next time.

    Args:
        out_dir (str): Dataset root (``data/toy_coco`` for the configs).
        force (bool): Rewrite even when a complete set with the same spec exists.
        spec (ToyCocoSpec, optional): What to generate. Default: ``ToyCocoSpec()``.

    Returns:
        str: A one-line summary.
    """
    spec = spec or ToyCocoSpec()
    existing = None if force else _complete_set(out_dir, spec)
    if existing is not None:
        return _summary(out_dir, existing, "kept")
    for folder in (*SPLITS, "annotations"):
        shutil.rmtree(osp.join(out_dir, folder), ignore_errors=True)
    os.makedirs(osp.join(out_dir, "annotations"))
    contents = [build_split(spec, split, osp.join(out_dir, split)) for split in SPLITS]
    for split, content in zip(SPLITS, contents):
        # Atomic, so a reader never sees half a file (and a killed run leaves none behind).
        ann_file = osp.join(out_dir, "annotations", f"instances_{split}.json")
        atomic_write_bytes(json.dumps(content).encode(), ann_file)
    return _summary(out_dir, contents, "wrote")
