"""Pictures of a model's predictions, drawn by mmdet's and mmseg's inferencers and visualizers."""

from .predictions import (
    IMAGE_EXTENSIONS,
    build_inferencer,
    draw_predictions,
    enlarge_prediction,
    enlargement,
    list_images,
)

__all__ = [
    "IMAGE_EXTENSIONS",
    "build_inferencer",
    "draw_predictions",
    "enlarge_prediction",
    "enlargement",
    "list_images",
]
