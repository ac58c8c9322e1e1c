"""Dataset parts for mmdet that need mmdet itself: imported by the configs that use them
(``custom_imports``), never by ``import mmrmt``."""
