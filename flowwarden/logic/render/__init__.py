"""Renderers: one per backend, one method per IR node kind, dispatched by class name."""

from __future__ import annotations

from typing import Any, ClassVar

from flowwarden.errors import RenderError
from flowwarden.logic.ir import Node


class Renderer:
    """Dispatches ``render(node)`` to ``<classname>_<SUFFIX>(node)``; a missing method raises.

    Subclasses list node kinds they deliberately do not support in ``UNSUPPORTED``; rendering
    one raises a RenderError naming it, with the node's span.
    """

    NAME: ClassVar[str] = "renderer"
    SUFFIX: ClassVar[str] = "render"
    UNSUPPORTED: ClassVar[frozenset[str]] = frozenset()

    def render(self, node: Node) -> Any:
        """Render one node by dispatching on its class name."""
        kind = type(node).__name__
        handler = None if kind in self.UNSUPPORTED else getattr(
            self, f"{kind.lower()}_{self.SUFFIX}", None
        )
        if handler is None:
            span = getattr(node, "span", None)
            raise RenderError(
                f"{self.NAME} cannot render {kind}", span.location() if span else None
            )
        return handler(node)

    @classmethod
    def handles(cls, kind: type[Node]) -> bool:
        """True when this renderer has a method for ``kind`` and does not list it unsupported."""
        name = kind.__name__
        return name not in cls.UNSUPPORTED and hasattr(cls, f"{name.lower()}_{cls.SUFFIX}")
