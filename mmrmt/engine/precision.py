"""``DeformableAttentionFP32Hook``: multi-scale deformable attention in fp32 under AMP.

The DINO and Mask2Former configs of mmrmt add it to ``custom_hooks``. Before training, validation
or testing, it switches the model's mmcv ``MultiScaleDeformableAttention`` modules to fp32
(:func:`mmrmt.models.deformable_attention.keep_deformable_attention_fp32`); with ``--amp`` the
rest of the model still runs in fp16 or bf16. Without AMP it changes nothing.
"""

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS


@HOOKS.register_module()
class DeformableAttentionFP32Hook(Hook):
    """Keep mmcv's multi-scale deformable attention in fp32 (see the module docstring)."""

    priority = "VERY_HIGH"

    def before_run(self, runner) -> None:
        """Switch the modules once the Runner has built (and wrapped) the model."""
        # Imported here, not at module level: mmcv.ops loads mmcv's compiled ops and mmcv.cnn,
        # which `import mmrmt` (and so every config's custom_imports) does not need.
        from ..models.deformable_attention import keep_deformable_attention_fp32

        count = keep_deformable_attention_fp32(runner.model)
        print_log(
            f"DeformableAttentionFP32Hook: {count} MultiScaleDeformableAttention modules in fp32",
            logger="current",
        )
