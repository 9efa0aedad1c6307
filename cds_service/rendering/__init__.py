"""Cards as clinicians read them: typed inputs per card kind, result views, and the renderer."""

from .renderer import CardRenderer

__all__ = ["CardRenderer"]
