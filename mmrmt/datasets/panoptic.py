"""``LoadPanopticAnnotationsWithoutApi``: mmdet's panoptic annotation loader without panopticapi.

mmdet's ``LoadPanopticAnnotations`` refuses to start without ``panopticapi``, which is not on the
package index, for one function: ``rgb2id``, the decoding of COCO panoptic's segment PNGs
(``R + 256 * G + 256**2 * B``). This subclass uses :func:`mmrmt.toy_data.coco_panoptic.rgb_to_id`
instead and is otherwise mmdet's loader (boxes, labels, masks and the semantic map from the
segments). Configs select it by name after importing this module::

    custom_imports = dict(imports=["mmrmt", "mmrmt.datasets.panoptic"], allow_failed_imports=False)

The panoptic metric (PQ, ``CocoPanopticMetric``) still needs panopticapi.
"""

from typing import Optional

from mmdet.datasets.transforms import LoadAnnotations, LoadPanopticAnnotations
from mmdet.registry import TRANSFORMS

from ..toy_data.coco_panoptic import rgb_to_id


@TRANSFORMS.register_module()
class LoadPanopticAnnotationsWithoutApi(LoadPanopticAnnotations):
    """mmdet's ``LoadPanopticAnnotations`` (same arguments), decoding segment ids itself."""

    def __init__(
        self,
        with_bbox: bool = True,
        with_label: bool = True,
        with_mask: bool = True,
        with_seg: bool = True,
        box_type: str = "hbox",
        imdecode_backend: str = "cv2",
        backend_args: Optional[dict] = None,
    ) -> None:
        # mmdet's __init__ imports panopticapi for rgb2id; its parent's sets everything else.
        self.rgb2id = rgb_to_id
        self.backend_args = backend_args
        LoadAnnotations.__init__(
            self,
            with_bbox=with_bbox,
            with_label=with_label,
            with_mask=with_mask,
            with_seg=with_seg,
            with_keypoints=False,
            box_type=box_type,
            imdecode_backend=imdecode_backend,
            backend_args=backend_args,
        )
