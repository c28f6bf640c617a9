"""simplecnn: the thin package behind the study book "How simple can a CNN classifier be?".

One module per concern: ``data`` (loading and splits), ``archives`` (``make data``),
``augment`` (uint8 batch augmentations), ``models`` (model registry and builders),
``train`` (the one training loop), ``metrics``, ``cache`` (keyed, atomic artifacts),
``receptive`` (receptive fields), ``memory`` (measured peak memory), ``zoo`` (the
architecture-zoo study), ``results`` (results json with provenance), ``runner`` and
``book`` (papermill execution and the Jupyter Book build).
"""

__version__ = "0.1.0"
