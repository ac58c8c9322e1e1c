"""Draw a model's predictions on images with mmdet's or mmseg's inferencer and visualizer.

The config's ``default_scope`` picks the library: ``DetInferencer`` and ``DetLocalVisualizer``
draw boxes, labels and masks; ``MMSegInferencer`` and ``SegLocalVisualizer`` draw the class map
as a coloured overlay. ``tools/draw_predictions.py`` draws at the images' own size;
``tools/toy_demo.py`` enlarges its toy images (about 100 px, too small for readable labels) by
an integer factor, nearest neighbour, and scales the predictions with them.
"""

import copy
import os
from typing import List, Optional, Sequence, Tuple

import mmcv
from mmengine.config import Config
from mmengine.infer import BaseInferencer
from mmengine.structures import BaseDataElement, PixelData

from ..errors import InvalidValueError
from ..utils import config_scope

#: File endings of the images found in a folder (mmdet's inferencer reads the same ones).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def list_images(path: str) -> List[str]:
    """The image file ``path``, or the images in folder ``path`` sorted by name.

    Args:
        path (str): An image file or a folder (its subfolders are not searched).

    Returns:
        list[str]: Image files.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        InvalidValueError: the folder holds no image.
    """
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise FileNotFoundError(f"input not found: {path}. Pass an image file or a folder")
    names = sorted(n for n in os.listdir(path) if n.lower().endswith(IMAGE_EXTENSIONS))
    if not names:
        raise InvalidValueError(f"no images in {path}: expected files ending in {IMAGE_EXTENSIONS}")
    return [os.path.join(path, name) for name in names]


def enlargement(shape: Tuple[int, ...], display_size: Optional[int]) -> int:
    """The integer factor that brings an image's short side closest to ``display_size``.

    Args:
        shape (tuple[int]): The image's shape, ``(H, W)`` or ``(H, W, C)``.
        display_size (int | None): The short side to approach without exceeding it; None keeps
            the image's size.

    Returns:
        int: The factor, at least 1.
    """
    if display_size is None:
        return 1
    return max(1, display_size // min(shape[:2]))


def enlarge_prediction(sample: BaseDataElement, factor: int) -> BaseDataElement:
    """Scale a data sample's predictions by an integer ``factor`` (nearest neighbour).

    Args:
        sample (DetDataSample | SegDataSample): A model's output for one image; boxes in
            ``pred_instances.bboxes`` (N, 4), masks in ``pred_instances.masks`` (N, H, W) or the
            class map in ``pred_sem_seg.data`` (1, H, W).
        factor (int): Upscaling factor.

    Returns:
        The same kind of sample holding only the enlarged predictions (``sample`` itself when
        ``factor`` is 1).
    """
    if factor == 1:
        return sample
    if "pred_instances" in sample:
        instances = sample.pred_instances.clone()
        instances.bboxes = instances.bboxes * factor
        if "masks" in instances:
            instances.masks = instances.masks.repeat_interleave(factor, 1).repeat_interleave(
                factor, 2
            )
        return type(sample)(pred_instances=instances)
    label_map = sample.pred_sem_seg.data.repeat_interleave(factor, 1).repeat_interleave(factor, 2)
    return type(sample)(pred_sem_seg=PixelData(data=label_map))


def build_inferencer(cfg: Config, weights: Optional[str], device: str = "cpu") -> BaseInferencer:
    """mmdet's ``DetInferencer`` or mmseg's ``MMSegInferencer`` for the config's model.

    Its visualizer names the classes of the checkpoint (a Runner saves its dataset's
    ``dataset_meta``); random weights take the config's ``test_dataloader.dataset.metainfo``
    rather than the inferencers' fallback of COCO's or Cityscapes' classes, which a model
    trained on other classes would mislabel.

    Args:
        cfg (Config): Model config; its ``default_scope`` picks the library.
        weights (str | None): Checkpoint; None keeps the random initial weights.
        device (str): E.g. ``'cpu'`` or ``'cuda:0'``.

    Returns:
        BaseInferencer: The inferencer, with its ``visualizer``.

    Raises:
        InvalidValueError: The config's scope is neither mmdet nor mmseg.
    """
    scope = config_scope(cfg)
    # The inferencers edit the config they are given (visualizer name, test pipeline).
    cfg = copy.deepcopy(cfg)
    if scope == "mmdet":
        from mmdet.apis import DetInferencer

        inferencer = DetInferencer(model=cfg, weights=weights, device=device)
    else:
        from mmseg.apis import MMSegInferencer

        inferencer = MMSegInferencer(model=cfg, weights=weights, device=device)
    # draw_predictions calls it once per image: a progress bar per image would only be noise.
    inferencer.show_progress = False
    configured = cfg.test_dataloader.dataset.get("metainfo") if weights is None else None
    inferencer.visualizer.dataset_meta = dict(configured or inferencer.model.dataset_meta)
    return inferencer


def predict(inferencer: BaseInferencer, image: str) -> BaseDataElement:
    """The inferencer's data sample for one image file, on the CPU.

    Args:
        inferencer (BaseInferencer): From :func:`build_inferencer`.
        image (str): Image file.

    Returns:
        DetDataSample | SegDataSample: Predictions in the image's own coordinates.
    """
    result = inferencer(image, return_datasamples=True)
    # DetInferencer returns {'predictions': [sample, ...], ...}; MMSegInferencer a lone sample.
    sample = result["predictions"][0] if isinstance(result, dict) else result
    return sample.cpu()


def draw_predictions(
    cfg: Config,
    weights: Optional[str],
    images: Sequence[str],
    out_dir: str,
    score_thr: float = 0.3,
    display_size: Optional[int] = None,
    device: str = "cpu",
) -> List[str]:
    """Draw a model's predictions on ``images``, one picture per image.

    Detection draws boxes, labels and masks scoring above ``score_thr``; segmentation draws the
    class map as a coloured overlay.

    Args:
        cfg (Config): Model config; its ``default_scope`` picks mmdet or mmseg.
        weights (str | None): Checkpoint; None keeps the random initial weights.
        images (Sequence[str]): Image files (see :func:`list_images`).
        out_dir (str): The pictures go here under the images' file names.
        score_thr (float): Detection score threshold (segmentation has none).
        display_size (int | None): Enlarge each picture and its predictions by the integer
            factor of :func:`enlargement`; None keeps the images' size.
        device (str): E.g. ``'cpu'`` or ``'cuda:0'``.

    Returns:
        list[str]: The written pictures, in the order of ``images``.
    """
    inferencer = build_inferencer(cfg, weights, device)
    # SegLocalVisualizer draws every class of the map and takes no score threshold.
    draw_options = dict(pred_score_thr=score_thr) if config_scope(cfg) == "mmdet" else {}
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for path in images:
        # One image per call: each sample is drawn on its own file, and the memory stays small.
        sample = predict(inferencer, path)
        image = mmcv.imread(path, channel_order="rgb")
        factor = enlargement(image.shape, display_size)
        name = os.path.basename(path)
        target = os.path.join(out_dir, name)
        inferencer.visualizer.add_datasample(
            name,
            image.repeat(factor, 0).repeat(factor, 1),
            enlarge_prediction(sample, factor),
            draw_gt=False,
            out_file=target,
            **draw_options,
        )
        written.append(target)
    return written
