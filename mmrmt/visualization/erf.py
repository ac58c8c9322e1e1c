"""Effective receptive fields (ERF), measured as in RepLKNet (Ding et al., CVPR 2022).

The ERF of a feature map is how strongly each input pixel moves its central output location:
the gradient of that location's channels (through a ReLU, then summed, as RepLKNet does) with
respect to the input, ``|grad|`` summed over the input channels and averaged over images. It is
drawn log-scaled and summarised by the area that holds 20%, 50% and 90% of the gradient mass:
the fewest highest-gradient pixels whose gradients add up to that share
(:func:`gradient_mass_areas`).
"""

import json
import os
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence

import numpy as np
import torch
from mmdet.models.backbones import SwinTransformer
from torch import Tensor, nn

from ..baselines import swin_t_kwargs
from ..errors import InvalidValueError
from ..models import RMT, set_attention_impl
from .drawing import Panel, draw_panels
from .photos import center_square, image_tensor, load_image

#: Maps (N, 3, H, W) images to one (N, C, h, w) feature map.
FeatureFunction = Callable[[Tensor], Tensor]

#: Shares of the gradient mass that :func:`gradient_mass_areas` reports.
MASS_SHARES = (0.2, 0.5, 0.9)

#: Decades below the maximum that the log-scaled ERF pictures show.
DISPLAY_DECADES = 3


def input_gradient(features_of: FeatureFunction, images: Tensor) -> Tensor:
    """``|d relu(central output location).sum() / d image|`` of each image, summed over channels.

    RepLKNet's ReLU matters here: the stages end in LayerNorms, and the plain channel sum of a
    normalised vector is constant (0 with the initial affine weights), so its gradient is 0.
    The images of a batch are independent (the model must be in eval mode: no batch
    statistics), so one backward pass through the summed centres gives each image's gradient.

    Args:
        features_of (FeatureFunction): The model up to the feature map studied, in eval mode.
        images (Tensor): (N, 3, H, W) normalised images.

    Returns:
        Tensor: (N, H, W) float64.
    """
    images = images.detach().clone().requires_grad_(True)
    features = features_of(images)
    height, width = features.shape[-2:]
    centres = torch.relu(features[:, :, height // 2, width // 2]).sum()
    (gradient,) = torch.autograd.grad(centres, images)
    return gradient.abs().sum(dim=1).double()


def effective_receptive_field(
    features_of: FeatureFunction, images: Sequence[Tensor], batch_size: int = 4
) -> np.ndarray:
    """The input gradient of the central output location, averaged over ``images``.

    Args:
        features_of (FeatureFunction): The model up to the feature map studied, in eval mode.
        images (Sequence[Tensor]): (1, 3, H, W) normalised images, all of one size.
        batch_size (int): Images per forward and backward pass.

    Returns:
        np.ndarray: (H, W) float64 mean ``|grad|``.
    """
    if not images:
        raise InvalidValueError("the ERF needs at least one image")
    batches = [
        torch.cat(list(images[start : start + batch_size]))
        for start in range(0, len(images), batch_size)
    ]
    gradients = torch.cat([input_gradient(features_of, batch) for batch in batches])
    return gradients.mean(dim=0).numpy()


class MassArea(NamedTuple):
    """The smallest set of pixels that holds a share of the gradient mass.

    Attributes:
        share (float): Share of the total gradient, e.g. 0.5.
        pixels (int): Number of pixels (the highest-gradient ones).
        fraction (float): ``pixels`` over all input pixels.
    """

    share: float
    pixels: int
    fraction: float


def gradient_mass_areas(erf: np.ndarray, shares: Sequence[float] = MASS_SHARES) -> List[MassArea]:
    """How many of the highest-gradient pixels it takes to hold each share of the gradient.

    Args:
        erf (np.ndarray): (H, W) non-negative gradient map.
        shares (Sequence[float]): Shares in (0, 1].

    Returns:
        list[MassArea]: One per share.
    """
    values = np.sort(erf.ravel())[::-1]
    total = values.sum()
    if total <= 0:
        raise ValueError("the gradient map is zero everywhere: no output depends on the input")
    cumulative = np.cumsum(values) / total
    areas = []
    for share in shares:
        # Rounding may leave the last cumulative sum a hair under 1.
        pixels = min(int(np.searchsorted(cumulative, share * (1 - 1e-12))) + 1, values.size)
        areas.append(MassArea(share, pixels, pixels / values.size))
    return areas


def rmt_features(backbone: RMT, stage: int) -> FeatureFunction:
    """The output of stage ``stage`` of an RMT (which must be among its ``out_indices``).

    Args:
        backbone (RMT): The backbone.
        stage (int): Stage index.

    Returns:
        FeatureFunction: image -> (1, C, h, w) output of that stage.

    Raises:
        InvalidValueError: the backbone does not return that stage.
    """
    if stage not in backbone.out_indices:
        raise InvalidValueError(
            f"unknown stage {stage}: this RMT returns stages {list(backbone.out_indices)}"
        )
    index = backbone.out_indices.index(stage)
    return lambda image: backbone(image)[index]


def random_rmt_tiny(stage: int, seed: int = 0) -> RMT:
    """RMT-T with the authors' random initialisation, returning stage ``stage``, in eval mode.

    Args:
        stage (int): Stage index (0..3).
        seed (int): Seed of the initialisation (the global RNG is left as it was).

    Returns:
        RMT: The backbone.
    """
    if not 0 <= stage < 4:
        raise InvalidValueError(f"unknown stage {stage}: RMT-T and Swin-T have stages 0..3")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        backbone = RMT(arch="t", out_indices=(stage,), drop_path_rate=0.0)
        backbone.init_weights()
    backbone.eval()
    return backbone


def random_swin_tiny(stage: int, seed: int = 0) -> nn.Module:
    """mmdet's Swin-T (:data:`~mmrmt.baselines.SWIN_T`) without stochastic depth, randomly
    initialised, in eval mode.

    Args:
        stage (int): The stage returned (0..3; stride ``4 * 2 ** stage``, as RMT's).
        seed (int): Seed of the initialisation (the global RNG is left as it was).

    Returns:
        nn.Module: mmdet's ``SwinTransformer``.
    """
    if not 0 <= stage < 4:
        raise InvalidValueError(f"unknown stage {stage}: RMT-T and Swin-T have stages 0..3")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        swin = SwinTransformer(**swin_t_kwargs(drop_path_rate=0.0, out_indices=(stage,)))
        swin.init_weights()
    swin.eval()  # mmdet's Swin.train() returns None
    return swin


def swin_features(swin: nn.Module) -> FeatureFunction:
    """The single output of a Swin built with one ``out_indices`` entry."""
    return lambda image: swin(image)[0]


def comparison_models(
    stage: int,
    trained: Optional[RMT] = None,
    trained_name: str = "RMT, trained",
    with_swin: bool = True,
) -> Dict[str, FeatureFunction]:
    """The models whose ERFs are compared: RMT-T random, a trained RMT, Swin-T random.

    Args:
        stage (int): The stage studied (0..3).
        trained (RMT | None): A trained RMT returning ``stage`` (switched to the fast MaSA
            path, the same function, whose backward is cheaper); None leaves it out.
        trained_name (str): How the trained model is named
            (:func:`~mmrmt.visualization.figure_models.trained_name`).
        with_swin (bool): Include Swin-T.

    Returns:
        dict[str, FeatureFunction]: Name -> the model up to ``stage``.
    """
    models = {"RMT-T, random init": rmt_features(random_rmt_tiny(stage), stage)}
    if trained is not None:
        set_attention_impl(trained, "fast")
        models[trained_name] = rmt_features(trained, stage)
    if with_swin:
        models["Swin-T, random init"] = swin_features(random_swin_tiny(stage))
    return models


def erf_images(sources: Sequence[str], size: int) -> List[Tensor]:
    """Sample photographs or image files as (1, 3, size, size) ImageNet-normalised squares.

    Args:
        sources (Sequence[str]): Names of :data:`~.photos.SAMPLE_PHOTOS` or image files.
        size (int): Side of the central square, at least 32 (one stride-32 token).

    Returns:
        list[Tensor]: One (1, 3, size, size) tensor per source.

    Raises:
        InvalidValueError: ``size`` below 32, or a file that is not an image.
        FileNotFoundError: a missing image.
    """
    if size < 32:
        raise InvalidValueError(
            f"the ERF input must be at least 32 pixels (one stride-32 token), got {size}"
        )
    return [image_tensor(center_square(load_image(source), size)) for source in sources]


def summary_table(areas: Dict[str, List[MassArea]], image_size: int) -> str:
    """A Markdown table of the areas holding each share of the gradient, one row per model.

    Args:
        areas (dict[str, list[MassArea]]): Model name -> its areas.
        image_size (int): Input side, for the header.

    Returns:
        str: The table.
    """
    shares = [area.share for area in next(iter(areas.values()))]
    header = "| model | " + " | ".join(f"{share:.0%} of mass" for share in shares) + " |"
    lines = [header, "|---" * (len(shares) + 1) + "|"]
    for name, model_areas in areas.items():
        cells = [f"{area.fraction:.2%} ({area.pixels} px)" for area in model_areas]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append(
        f"\nArea: the fewest highest-gradient pixels of the {image_size}x{image_size} input"
    )
    return "\n".join(lines)


def draw_erfs(erfs: Dict[str, np.ndarray], title: str, out_file: str) -> str:
    """Draw each model's ERF, log-scaled to its own maximum, side by side.

    Args:
        erfs (dict[str, np.ndarray]): Model name -> (H, W) ERF.
        title (str): Figure title.
        out_file (str): PNG path.

    Returns:
        str: ``out_file``.
    """
    floor = 10.0**-DISPLAY_DECADES
    panels = []
    for name, erf in erfs.items():
        half = gradient_mass_areas(erf, (0.5,))[0]
        log_scaled = np.log10(np.clip(erf / erf.max(), floor, 1.0))
        panels.append(Panel(f"{name}\n50% of mass: {half.fraction:.1%} of pixels", log_scaled))
    return draw_panels(
        [panels],
        title,
        out_file,
        "log10(|grad| / max)",
        value_range=(-DISPLAY_DECADES, 0.0),
        panel_inches=2.6,
    )


def compare_erfs(
    models: Dict[str, FeatureFunction],
    images: Sequence[Tensor],
    stage: int,
    out_dir: str,
    note: Optional[str] = None,
) -> str:
    """Measure, draw and summarise the ERFs of several models on the same images.

    Writes ``erf.png``, ``erf_summary.md`` and ``erf_summary.json`` into ``out_dir``.

    Args:
        models (dict[str, FeatureFunction]): Name -> the model up to the studied stage.
        images (Sequence[Tensor]): (1, 3, S, S) normalised images.
        stage (int): The studied stage, for titles.
        out_dir (str): Output folder.
        note (str | None): A line added to the figure title and the summary (e.g. which
            weights are missing).

    Returns:
        str: The summary table (Markdown).
    """
    erfs = {
        name: effective_receptive_field(features_of, images) for name, features_of in models.items()
    }
    size = images[0].shape[-1]
    areas = {name: gradient_mass_areas(erf) for name, erf in erfs.items()}
    table = summary_table(areas, size)
    title = (
        f"ERF of the central stage-{stage} location (stride {4 * 2**stage}), "
        f"{size}x{size} input, mean over {len(images)} photos"
    )
    if note:
        title += f"\n{note}"
        table += f"\n\n{note}"
    os.makedirs(out_dir, exist_ok=True)
    draw_erfs(erfs, title, os.path.join(out_dir, "erf.png"))
    with open(os.path.join(out_dir, "erf_summary.md"), "w") as f:
        f.write(f"{title}\n\n{table}\n")
    record = dict(
        stage=stage,
        image_size=size,
        num_images=len(images),
        note=note,
        models={
            name: [area._asdict() for area in model_areas] for name, model_areas in areas.items()
        },
    )
    with open(os.path.join(out_dir, "erf_summary.json"), "w") as f:
        json.dump(record, f, indent=2)
    return table
