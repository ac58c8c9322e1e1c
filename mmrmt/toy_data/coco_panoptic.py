"""Toy COCO panoptic annotations, derived from the toy COCO instance set.

Each image's visible shape masks become *thing* segments (circle, square, triangle) and the
pixels no shape covers one *stuff* segment (``background``). The output sits beside the
instance annotations, in the layout mmdet's ``CocoPanopticDataset`` reads::

    coco_dir/annotations/panoptic_train.json   coco_dir/annotations/panoptic_train/000001.png ...
    coco_dir/annotations/panoptic_val.json     coco_dir/annotations/panoptic_val/000001.png ...

Segment PNGs encode the segment id as ``R + 256 * G + 256**2 * B`` (COCO panoptic's ``id2rgb``).
"""

import json
import os
import os.path as osp
from typing import Dict, List, Tuple

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from ..engine.atomic_io import atomic_write_bytes
from .coco import CATEGORIES, SPLITS

#: The stuff class that fills what no shape covers; its category id follows the things'.
STUFF_CATEGORY = "background"


def id_to_rgb(segment_ids: np.ndarray) -> np.ndarray:
    """COCO panoptic's colour encoding: (H, W) ids -> (H, W, 3) uint8 RGB."""
    return np.stack([(segment_ids // 256**c) % 256 for c in range(3)], axis=-1).astype(np.uint8)


def rgb_to_id(rgb: np.ndarray) -> np.ndarray:
    """The inverse of :func:`id_to_rgb`: (H, W, 3) RGB -> (H, W) int64 ids."""
    rgb = rgb.astype(np.int64)
    return rgb[..., 0] + 256 * rgb[..., 1] + 256**2 * rgb[..., 2]


def panoptic_categories() -> List[Dict]:
    """Things first (the instance set's ids 1..3), then the stuff class."""
    things = [
        dict(id=index + 1, name=name, supercategory="shape", isthing=1)
        for index, name in enumerate(CATEGORIES)
    ]
    stuff = dict(id=len(CATEGORIES) + 1, name=STUFF_CATEGORY, supercategory="stuff", isthing=0)
    return [*things, stuff]


def _segment(segment_id: int, category_id: int, mask: np.ndarray) -> Dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return dict(
        id=segment_id,
        category_id=category_id,
        iscrowd=0,
        area=int(mask.sum()),
        bbox=[float(v) for v in mask_utils.toBbox(rle)],
    )


def panoptic_image(image: Dict, annotations: List[Dict]) -> Tuple[np.ndarray, Dict]:
    """One image's segment-id map and its panoptic annotation.

    Args:
        image (dict): The instance set's ``images`` entry.
        annotations (list[dict]): The instance annotations of that image (RLE masks).

    Returns:
        tuple: (H, W) int64 segment ids (0 = unlabelled, none here) and the annotation dict.
    """
    segment_ids = np.zeros((image["height"], image["width"]), dtype=np.int64)
    segments = []
    for ann in annotations:
        mask = mask_utils.decode(ann["segmentation"]).astype(bool) & (segment_ids == 0)
        segment_ids[mask] = len(segments) + 1
        segments.append(_segment(len(segments) + 1, ann["category_id"], mask))
    background = segment_ids == 0
    if background.any():
        segment_ids[background] = len(segments) + 1
        segments.append(_segment(len(segments) + 1, len(CATEGORIES) + 1, background))
    file_name = osp.splitext(image["file_name"])[0] + ".png"
    return segment_ids, dict(image_id=image["id"], file_name=file_name, segments_info=segments)


def make_toy_coco_panoptic(coco_dir: str) -> str:
    """Write panoptic annotations for the toy COCO set in ``coco_dir`` (made by ``make_toy_coco``).

    Rewritten every call (a few hundred tiny PNGs): they always match the instance set.

    Args:
        coco_dir (str): The toy COCO root, e.g. ``data/toy_coco``.

    Returns:
        str: A one-line summary.

    Raises:
        FileNotFoundError: ``coco_dir`` holds no toy COCO instance annotations.
    """
    counts = []
    for split in SPLITS:
        instances_file = osp.join(coco_dir, "annotations", f"instances_{split}.json")
        if not osp.isfile(instances_file):
            raise FileNotFoundError(
                f"{instances_file} not found: write the toy COCO set first (make toy-data)"
            )
        with open(instances_file) as f:
            instances = json.load(f)
        by_image: Dict[int, List[Dict]] = {}
        for ann in instances["annotations"]:
            by_image.setdefault(ann["image_id"], []).append(ann)
        png_dir = osp.join(coco_dir, "annotations", f"panoptic_{split}")
        os.makedirs(png_dir, exist_ok=True)
        annotations = []
        for image in instances["images"]:
            segment_ids, annotation = panoptic_image(image, by_image.get(image["id"], []))
            rgb = id_to_rgb(segment_ids)
            cv2.imwrite(osp.join(png_dir, annotation["file_name"]), rgb[..., ::-1])
            annotations.append(annotation)
        content = dict(
            info=dict(description="mmrmt toy COCO panoptic", source=instances.get("info")),
            images=instances["images"],
            annotations=annotations,
            categories=panoptic_categories(),
        )
        panoptic_file = osp.join(coco_dir, "annotations", f"panoptic_{split}.json")
        atomic_write_bytes(json.dumps(content).encode(), panoptic_file)
        counts.append(f"{split} {len(annotations)} images")
    return f"toy COCO panoptic: wrote {coco_dir}/annotations/panoptic_* ({', '.join(counts)})"
