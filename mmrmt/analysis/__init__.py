"""Model analysis: parameters and FLOPs (:mod:`.flops`)."""
