"""Every picture of what MaSA does, in one folder: what ``make vis`` draws.

* ``decay_stage{N}.png``: RMT-T's decay around a query token, per head and stage;
* ``attention_{photo}.png`` and ``attention_{photo}_stage{N}.png``: where a query pixel of a
  scikit-image photograph looks in each stage, on average and per head;
* ``erf.png``, ``erf_summary.md``, ``erf_summary.json``: the effective receptive field of RMT-T
  (random and, when available, toy-trained) and Swin-T at one stage.

The trained model is the ``make demo`` checkpoint when it exists; otherwise the figures say that
they show random weights.
"""

import os
from typing import List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
from torch import nn

from ..models import RMT
from .attention import check_point, draw_attention
from .decay import draw_stage_decays
from .erf import compare_erfs, comparison_models, erf_images
from .figure_models import rmt_from_config, trained_name, weights_label
from .photos import SAMPLE_PHOTOS, image_tensor, load_image, normalisation, resize_long_side

#: The toy detector of ``make demo`` and the checkpoint its training ends with.
DEMO_CONFIG = "mmrmt::det/maskrcnn_rmt_t_toy.py"
DEMO_CHECKPOINT = "work_dirs/demo/epoch_9.pth"


class AttentionQuery(NamedTuple):
    """A photograph and the (y, x) pixel, in its own coordinates, whose attention is drawn."""

    photo: str
    point: Tuple[int, int]


#: The astronaut's face and the cat's eye.
ATTENTION_QUERIES = (AttentionQuery("astronaut", (140, 230)), AttentionQuery("chelsea", (112, 170)))


def demo_checkpoint(checkpoint: Optional[str]) -> Optional[str]:
    """``checkpoint`` if given, else :data:`DEMO_CHECKPOINT` when ``make demo`` has written it.

    Args:
        checkpoint (str | None): A checkpoint the user asked for (it must exist).

    Returns:
        str | None: The checkpoint to use; None for random weights.
    """
    if checkpoint is not None:
        return checkpoint
    return DEMO_CHECKPOINT if os.path.isfile(DEMO_CHECKPOINT) else None


class PreparedPhoto(NamedTuple):
    """An image resized for the model, with its query pixel.

    Attributes:
        name (str): Sample name or file stem, for file names and titles.
        image (np.ndarray): (H, W, 3) uint8 RGB as the model sees it.
        point (tuple[int, int]): (y, x) query pixel in ``image``.
        original_point (tuple[int, int]): The same pixel in the original image.
    """

    name: str
    image: np.ndarray
    point: Tuple[int, int]
    original_point: Tuple[int, int]


def prepare_photo(query: AttentionQuery, long_side: int) -> PreparedPhoto:
    """Read the query's image, check its pixel, and resize both for the model.

    Args:
        query (AttentionQuery): Image (sample name or path) and (y, x) pixel in its coordinates.
        long_side (int): The image's longer side as the model sees it.

    Returns:
        PreparedPhoto: The resized image and pixel.

    Raises:
        FileNotFoundError: the image is missing.
        InvalidValueError: the pixel lies outside it.
    """
    photo = load_image(query.photo)
    check_point(query.point, photo.shape[:2])
    image, scale = resize_long_side(photo, long_side)
    point = (
        min(int(query.point[0] * scale), image.shape[0] - 1),
        min(int(query.point[1] * scale), image.shape[1] - 1),
    )
    name = os.path.splitext(os.path.basename(query.photo))[0]
    return PreparedPhoto(name, image, point, tuple(query.point))


def attention_on_photo(
    backbone: RMT,
    model: nn.Module,
    photo: PreparedPhoto,
    out_dir: str,
    weights: str,
    block: int = -1,
) -> List[str]:
    """Draw ``attention_{name}.png`` and ``attention_{name}_stage{N}.png`` for a photograph.

    Args:
        backbone (RMT): The backbone.
        model (nn.Module): The model around it, whose data preprocessor gives the normalisation.
        photo (PreparedPhoto): From :func:`prepare_photo`.
        out_dir (str): Folder of the PNGs.
        weights (str): What the weights are, for the titles.
        block (int): Which block of each stage.

    Returns:
        list[str]: The PNG paths.
    """
    tensor = image_tensor(photo.image, *normalisation(model))
    title = f"RMT attention of pixel {photo.original_point} of {photo.name}, {weights}"
    name = f"attention_{photo.name}"
    return draw_attention(backbone, tensor, photo.image, photo.point, out_dir, title, name, block)


def draw_gallery(
    out_dir: str,
    config: str = DEMO_CONFIG,
    checkpoint: Optional[str] = None,
    queries: Sequence[AttentionQuery] = ATTENTION_QUERIES,
    attention_size: int = 384,
    erf_stage: int = 2,
    erf_size: int = 224,
    erf_photos: Sequence[str] = SAMPLE_PHOTOS,
    decay_arch: Union[str, dict] = "t",
) -> Tuple[List[str], str]:
    """Draw every figure into ``out_dir``.

    Args:
        out_dir (str): Output folder.
        config (str): Config of the RMT model whose attention and ERF are drawn.
        checkpoint (str | None): Its weights; None for random ones.
        queries (Sequence[AttentionQuery]): Photographs and query pixels of the attention maps.
        attention_size (int): Longer image side of the attention maps.
        erf_stage (int): Stage whose central location the ERF follows.
        erf_size (int): Side of the square ERF inputs.
        erf_photos (Sequence[str]): Images the ERF is averaged over.
        decay_arch (str | dict): RMT arch whose decay maps are drawn.

    Returns:
        tuple: (the PNG paths, the ERF summary table).
    """
    photos = [prepare_photo(query, attention_size) for query in queries]
    paths = draw_stage_decays(decay_arch, None, (15, 15), None, out_dir)
    model, backbone = rmt_from_config(config, checkpoint)
    weights = weights_label(checkpoint)
    for photo in photos:
        paths += attention_on_photo(backbone, model, photo, out_dir, weights)
    images = erf_images(erf_photos, erf_size)
    if checkpoint is None:
        note = f"no trained RMT-T: {DEMO_CHECKPOINT} not found (make demo writes it)"
        models = comparison_models(erf_stage)
    else:
        note = None
        models = comparison_models(erf_stage, backbone, trained_name(config, checkpoint))
    table = compare_erfs(models, images, erf_stage, out_dir, note)
    paths.append(os.path.join(out_dir, "erf.png"))
    return paths, table
