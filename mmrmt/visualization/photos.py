"""Photographs to look at models with, without a network: scikit-image's samples or a file.

scikit-image ships a few photographs inside its wheel (``skimage.data``); :func:`load_image`
takes one of their names or the path of any image file and returns it as RGB, and
:func:`image_tensor` normalises it the way the model was trained.
"""

import os
from typing import Optional, Sequence, Tuple

import mmcv
import numpy as np
import torch
from skimage import data as skimage_data
from torch import Tensor, nn

from ..errors import InvalidValueError

#: Photographs in scikit-image's wheel, by name -> the ``skimage.data`` function returning it
#: (the motorcycle is the left view of a stereo pair; the cameraman is grey).
SAMPLE_LOADERS = {
    "astronaut": skimage_data.astronaut,
    "chelsea": skimage_data.chelsea,
    "coffee": skimage_data.coffee,
    "rocket": skimage_data.rocket,
    "motorcycle": lambda: skimage_data.stereo_motorcycle()[0],
    "camera": skimage_data.camera,
    "hubble_deep_field": skimage_data.hubble_deep_field,
    "immunohistochemistry": skimage_data.immunohistochemistry,
}
SAMPLE_PHOTOS = tuple(SAMPLE_LOADERS)

#: ImageNet mean and std of RGB pixels in 0..255, as mmdet's and mmseg's configs normalise.
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


def load_image(source: str) -> np.ndarray:
    """Read a sample photograph by name or an image file by path.

    Args:
        source (str): A name of :data:`SAMPLE_PHOTOS` or an image file.

    Returns:
        np.ndarray: (H, W, 3) uint8 RGB.

    Raises:
        FileNotFoundError: ``source`` is neither a sample name nor a file.
        InvalidValueError: the file is not a readable image.
    """
    if source in SAMPLE_LOADERS:
        image = SAMPLE_LOADERS[source]()
        return np.ascontiguousarray(
            np.stack([image] * 3, -1) if image.ndim == 2 else image[..., :3]
        )
    if not os.path.isfile(source):
        raise FileNotFoundError(
            f"image not found: {source}. Pass an image file or one of scikit-image's "
            f"photographs: {', '.join(SAMPLE_PHOTOS)}"
        )
    image = mmcv.imread(source, flag="color", channel_order="rgb")
    if image is None:
        raise InvalidValueError(f"cannot read {source} as an image")
    return image


def resize_long_side(image: np.ndarray, long_side: int) -> Tuple[np.ndarray, float]:
    """Resize ``image`` so that its longer side is ``long_side`` pixels, keeping its aspect.

    Args:
        image (np.ndarray): (H, W, 3).
        long_side (int): Target length of the longer side.

    Returns:
        tuple: the resized (H', W', 3) image and the scale factor H' / H.
    """
    scale = long_side / max(image.shape[:2])
    height, width = (max(1, round(side * scale)) for side in image.shape[:2])
    return mmcv.imresize(image, (width, height)), scale


def center_square(image: np.ndarray, size: int) -> np.ndarray:
    """Resize the shorter side to ``size`` and crop the central ``size`` x ``size`` square.

    Args:
        image (np.ndarray): (H, W, 3).
        size (int): Side of the square.

    Returns:
        np.ndarray: (size, size, 3).
    """
    scale = size / min(image.shape[:2])
    height, width = (max(size, round(side * scale)) for side in image.shape[:2])
    resized = mmcv.imresize(image, (width, height))
    top, left = (height - size) // 2, (width - size) // 2
    return resized[top : top + size, left : left + size]


def normalisation(model: Optional[nn.Module]) -> Tuple[Sequence[float], Sequence[float], bool]:
    """The mean, std and channel order a model's data preprocessor feeds its backbone.

    Args:
        model (nn.Module | None): A detector or segmentor (mmengine's ``BaseModel``), or None
            (or a bare backbone) for ImageNet statistics on RGB.

    Returns:
        tuple: (mean, std) per channel in 0..255 and whether the backbone sees RGB.
    """
    preprocessor = getattr(model, "data_preprocessor", None)
    mean = getattr(preprocessor, "mean", None)
    if mean is None or not getattr(preprocessor, "_enable_normalize", True):
        return IMAGENET_MEAN, IMAGENET_STD, True
    # mmengine's preprocessors normalise after the BGR -> RGB swap (images are read as BGR).
    rgb = bool(getattr(preprocessor, "_channel_conversion", False))
    return mean.flatten().tolist(), preprocessor.std.flatten().tolist(), rgb


def image_tensor(
    image: np.ndarray,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    rgb: bool = True,
) -> Tensor:
    """Normalise an RGB image into a batch of one.

    Args:
        image (np.ndarray): (H, W, 3) uint8 RGB.
        mean (Sequence[float]): Per-channel mean, in the channel order the model sees.
        std (Sequence[float]): Per-channel std.
        rgb (bool): Whether the model sees RGB (else BGR).

    Returns:
        Tensor: (1, 3, H, W) float32.
    """
    pixels = torch.from_numpy(np.ascontiguousarray(image)).float().permute(2, 0, 1)
    if not rgb:
        pixels = pixels.flip(0)
    mean_tensor = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    std_tensor = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    return ((pixels - mean_tensor) / std_tensor)[None]
