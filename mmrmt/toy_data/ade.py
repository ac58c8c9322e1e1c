"""Toy semantic segmentation set in the ADE20K (``ADEChallengeData2016``) layout.

Every image is a small textured scene: a ``sky`` band at the top and a ``floor`` band at the
bottom around a ``wall``, with ``building`` rectangles and ``tree`` triangles in front, plus a
little unlabelled clutter. Like ADE20K, label 0 is "other" (ignored) and the classes are 1..K,
which ``reduce_zero_label=True`` maps to 0..K-1. mmseg's stock ``ADE20KDataset`` only accepts a
subset of its own 150 names as a custom class list, and only its first K names keep the ids
1..K, so the toy classes are ADE20K's first five names (see :data:`TOY_ADE_CLASSES`).

Colours and textures vary per image, so a model needs texture, shape and position together;
everything is drawn from a seeded generator, so the files are the same on every machine.
"""

import json
import os
import shutil
from typing import Callable, Dict, Optional, Tuple

import cv2
import numpy as np

#: ADE20K's first five classes in their order, so png value ``i`` is ADE20K's class ``i``.
TOY_ADE_CLASSES: Tuple[str, ...] = ("wall", "building", "sky", "floor", "tree")
#: Their ADE20K palette entries (RGB).
TOY_ADE_PALETTE: Tuple[Tuple[int, int, int], ...] = (
    (120, 120, 120),
    (180, 120, 120),
    (6, 230, 230),
    (80, 50, 50),
    (4, 200, 3),
)
WALL, BUILDING, SKY, FLOOR, TREE = range(1, len(TOY_ADE_CLASSES) + 1)
OTHER = 0

#: Split name -> (number of images, seed).
SPLITS: Dict[str, Tuple[int, int]] = {"training": (240, 0), "validation": (48, 1)}
#: Range of image heights and widths; sizes vary and are rarely multiples of 32, as in ADE20K.
HEIGHT_RANGE = (120, 168)
WIDTH_RANGE = (152, 232)
#: Written last; its ``settings`` identify the generator settings of a finished set.
STAMP_NAME = "toy_ade.json"
GENERATOR_VERSION = 2

#: A function of (rng, height, width) that returns a mask or a texture.
Drawer = Callable[[np.random.Generator, int, int], np.ndarray]


def _noise(rng: np.random.Generator, height: int, width: int, sigma: float) -> np.ndarray:
    """Per-pixel Gaussian noise, (H, W, 1) float32."""
    return rng.normal(0.0, sigma, (height, width, 1)).astype(np.float32)


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cell: int) -> np.ndarray:
    """Blobby noise in [-1, 1] with features about ``cell`` pixels wide, (H, W, 1) float32."""
    coarse = rng.uniform(-1.0, 1.0, (height // cell + 2, width // cell + 2)).astype(np.float32)
    smooth = cv2.resize(
        coarse, (width + 2 * cell, height + 2 * cell), interpolation=cv2.INTER_CUBIC
    )
    return np.clip(smooth[cell : cell + height, cell : cell + width, None], -1.0, 1.0)


def _hsv_colour(hue: float, saturation: float, value: float) -> np.ndarray:
    """One BGR colour (float32, 0..255) from a hue in degrees (any value) and s, v in 0..1."""
    # OpenCV's 8-bit hue runs over 0..179, half a degree per step.
    hsv = np.array([[[(hue % 360.0) / 2.0, saturation * 255.0, value * 255.0]]]).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.float32)


def wall_texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Pale, low-saturation plaster: a flat colour with fine grain."""
    colour = _hsv_colour(rng.uniform(0, 360), rng.uniform(0.0, 0.3), rng.uniform(0.45, 0.9))
    return colour + _noise(rng, height, width, 9.0) + 12.0 * _smooth_noise(rng, height, width, 24)


def sky_texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A vertical gradient (blue by day, orange or grey at times) with soft clouds."""
    hue = rng.choice(
        [rng.uniform(185, 235), rng.uniform(15, 45), rng.uniform(0, 360)], p=[0.7, 0.15, 0.15]
    )
    top = _hsv_colour(hue, rng.uniform(0.4, 0.9), rng.uniform(0.55, 0.85))
    bottom = _hsv_colour(hue, rng.uniform(0.1, 0.4), rng.uniform(0.8, 1.0))
    ramp = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    clouds = np.clip(_smooth_noise(rng, height, width, 20), 0.0, 1.0) * rng.uniform(30, 80)
    return top * (1 - ramp) + bottom * ramp + clouds + _noise(rng, height, width, 3.0)


def floor_texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Checkerboard tiles of two related colours."""
    hue = rng.uniform(0, 360)
    first = _hsv_colour(hue, rng.uniform(0.1, 0.6), rng.uniform(0.3, 0.7))
    second = _hsv_colour(hue + rng.uniform(-40, 40), rng.uniform(0.1, 0.6), rng.uniform(0.5, 0.95))
    tile = int(rng.integers(6, 14))
    rows, cols = np.mgrid[0:height, 0:width]
    checker = (((rows // tile) + (cols // tile)) % 2).astype(np.float32)[..., None]
    return first * checker + second * (1 - checker) + _noise(rng, height, width, 6.0)


def building_texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A facade of any colour with a regular grid of darker windows."""
    facade = _hsv_colour(rng.uniform(0, 360), rng.uniform(0.1, 0.7), rng.uniform(0.4, 0.95))
    window = facade * rng.uniform(0.15, 0.5)
    period_y, period_x = int(rng.integers(7, 13)), int(rng.integers(7, 13))
    rows, cols = np.mgrid[0:height, 0:width]
    is_window = ((rows % period_y) >= period_y // 2) & ((cols % period_x) >= period_x // 2)
    image = np.where(is_window[..., None], window, facade)
    return image + _noise(rng, height, width, 6.0)


def tree_texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Leaves: mostly green (sometimes autumn), speckled light and dark."""
    hue = rng.uniform(70, 150) if rng.random() < 0.8 else rng.uniform(20, 60)
    leaves = _hsv_colour(hue, rng.uniform(0.5, 0.95), rng.uniform(0.35, 0.75))
    speckle = _smooth_noise(rng, height, width, 3) * 45.0
    return leaves + speckle + _noise(rng, height, width, 8.0)


def _paint(
    image: np.ndarray, label: np.ndarray, mask: np.ndarray, fill: np.ndarray, class_id: int
) -> None:
    """Write ``fill`` into ``image`` and ``class_id`` into ``label`` where ``mask`` is set."""
    image[mask] = fill[mask]
    label[mask] = class_id


def _band_masks(rng: np.random.Generator, height: int, width: int) -> Tuple[np.ndarray, ...]:
    """Sky above a wavy horizon and floor below a tilted line (each present most of the time)."""
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    horizon = height * rng.uniform(0.15, 0.45) + rng.uniform(2, 8) * np.sin(
        cols / rng.uniform(10, 30) + rng.uniform(0, 2 * np.pi)
    )
    floor_line = height * rng.uniform(0.62, 0.85) + (cols - width / 2) * rng.uniform(-0.15, 0.15)
    sky = (rows < horizon) if rng.random() < 0.8 else np.zeros((height, width), bool)
    floor = (rows > floor_line) if rng.random() < 0.85 else np.zeros((height, width), bool)
    return sky, floor


def _rectangle_mask(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """An upright building: 15-40% of the width, 25-60% of the height."""
    box_w = int(width * rng.uniform(0.15, 0.4))
    box_h = int(height * rng.uniform(0.25, 0.6))
    left = int(rng.integers(-box_w // 4, width - box_w // 2))
    bottom = int(height * rng.uniform(0.55, 0.95))
    mask = np.zeros((height, width), np.uint8)
    cv2.rectangle(mask, (left, bottom - box_h), (left + box_w, bottom), 1, thickness=-1)
    return mask.astype(bool)


def _triangle_mask(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A pine-like tree: an upright isosceles triangle, 12-28% wide and 30-55% high."""
    half = width * rng.uniform(0.06, 0.14)
    tall = height * rng.uniform(0.3, 0.55)
    centre = rng.uniform(0, width)
    base = height * rng.uniform(0.55, 0.95)
    corners = np.array([[centre - half, base], [centre + half, base], [centre, base - tall]])
    mask = np.zeros((height, width), np.uint8)
    cv2.fillPoly(mask, [np.round(corners).astype(np.int32)], 1)
    return mask.astype(bool)


def _clutter_mask(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A small disc of unlabelled "other" stuff."""
    mask = np.zeros((height, width), np.uint8)
    centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
    cv2.circle(mask, centre, int(rng.integers(3, 8)), 1, thickness=-1)
    return mask.astype(bool)


#: Classes drawn in front of the background, each as (outline, texture).
OBJECTS: Dict[int, Tuple[Drawer, Drawer]] = {
    BUILDING: (_rectangle_mask, building_texture),
    TREE: (_triangle_mask, tree_texture),
}


def render_scene(
    rng: np.random.Generator, height: int, width: int
) -> Tuple[np.ndarray, np.ndarray]:
    """Draw one toy scene.

    Args:
        rng (np.random.Generator): Source of all randomness.
        height (int): Image height.
        width (int): Image width.

    Returns:
        tuple[np.ndarray, np.ndarray]: The BGR image (H, W, 3) uint8 and its ADE-style label map
        (H, W) uint8 with 0 = other and ``i`` = ``TOY_ADE_CLASSES[i - 1]``.
    """
    image = np.zeros((height, width, 3), np.float32)
    label = np.full((height, width), OTHER, np.uint8)
    _paint(image, label, np.ones((height, width), bool), wall_texture(rng, height, width), WALL)
    sky, floor = _band_masks(rng, height, width)
    _paint(image, label, sky, sky_texture(rng, height, width), SKY)
    _paint(image, label, floor, floor_texture(rng, height, width), FLOOR)

    objects = [BUILDING] * int(rng.integers(1, 4)) + [TREE] * int(rng.integers(1, 4))
    for class_id in rng.permutation(objects):
        outline, texture = OBJECTS[int(class_id)]
        mask = outline(rng, height, width)
        _paint(image, label, mask, texture(rng, height, width), int(class_id))
    for _ in range(int(rng.integers(0, 3))):
        clutter = np.full((height, width, 3), rng.uniform(0, 255, 3), np.float32)
        _paint(image, label, _clutter_mask(rng, height, width), clutter, OTHER)

    # A slight blur so that edges look photographed rather than drawn pixel-exact.
    image = cv2.GaussianBlur(np.clip(image, 0, 255), (3, 3), 0.6)
    return np.round(image).astype(np.uint8), label


def _write_split(out_dir: str, split: str, count: int, seed: int) -> np.ndarray:
    """Write one split; returns the pixel count per label value (0..K)."""
    image_dir = os.path.join(out_dir, "images", split)
    label_dir = os.path.join(out_dir, "annotations", split)
    for folder in (image_dir, label_dir):
        # Start empty so that files of an older, larger set cannot leak into this one.
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
    rng = np.random.default_rng(seed)
    pixels = np.zeros(len(TOY_ADE_CLASSES) + 1, np.int64)
    prefix = "ADE_train" if split == "training" else "ADE_val"
    for index in range(count):
        height = int(rng.integers(HEIGHT_RANGE[0], HEIGHT_RANGE[1] + 1))
        width = int(rng.integers(WIDTH_RANGE[0], WIDTH_RANGE[1] + 1))
        image, label = render_scene(rng, height, width)
        name = f"{prefix}_{index + 1:08d}"
        cv2.imwrite(os.path.join(image_dir, f"{name}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 92])
        cv2.imwrite(os.path.join(label_dir, f"{name}.png"), label)
        pixels += np.bincount(label.ravel(), minlength=len(pixels))
    return pixels


def _settings(splits: Dict[str, Tuple[int, int]]) -> dict:
    """What identifies a generated set: generator version, classes, split sizes and seeds."""
    return dict(
        version=GENERATOR_VERSION,
        classes=list(TOY_ADE_CLASSES),
        splits={name: list(count_and_seed) for name, count_and_seed in splits.items()},
    )


def _is_complete(out_dir: str, settings: dict) -> bool:
    """Whether ``out_dir`` holds a finished set written with ``settings``."""
    try:
        with open(os.path.join(out_dir, STAMP_NAME)) as file:
            return json.load(file).get("settings") == settings
    except (OSError, ValueError):
        return False


def make_toy_ade(
    out_dir: str, force: bool = False, splits: Optional[Dict[str, Tuple[int, int]]] = None
) -> str:
    """Write the toy ADE set to ``out_dir`` unless a finished one is already there.

    Layout: ``images/{training,validation}/*.jpg`` and ``annotations/{training,validation}/*.png``
    as in ``ADEChallengeData2016``; ``toy_ade.json`` (written last) records the settings and the
    class frequencies.

    Args:
        out_dir (str): Destination folder, e.g. ``data/toy_ade``.
        force (bool): Rewrite even if a finished set is present.
        splits (dict | None): Split name -> (number of images, seed); None for :data:`SPLITS`.
            Tests pass smaller sets.

    Returns:
        str: A one-line summary.
    """
    splits = SPLITS if splits is None else splits
    settings = _settings(splits)
    counts = ", ".join(f"{count} {split}" for split, (count, _) in splits.items())
    if not force and _is_complete(out_dir, settings):
        return f"toy ADE: {counts} images already in {out_dir}"
    stamp_path = os.path.join(out_dir, STAMP_NAME)
    if os.path.exists(stamp_path):
        os.remove(stamp_path)
    fractions = {}
    for split, (count, seed) in splits.items():
        pixels = _write_split(out_dir, split, count, seed)
        fractions[split] = dict(
            zip(("other", *TOY_ADE_CLASSES), np.round(pixels / pixels.sum(), 4).tolist())
        )
    with open(stamp_path, "w") as file:
        json.dump(dict(settings=settings, pixel_fractions=fractions), file, indent=2)
    return f"toy ADE: wrote {counts} images, {len(TOY_ADE_CLASSES)} classes to {out_dir}"
