"""A recorded drawing: primitives collected before the canvas size is known, replayed onto it.

Vehicle and goods builders write to a Sketch; each primitive may carry a tag (a truth entry's
index) so that the replay returns the pixel box every tagged object actually covered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from models.evalgen.canvas import Box, Canvas


@dataclass
class Sketch:
    """Primitives in vehicle millimetres, each (tag or None, Canvas method name, arguments)."""

    ops: list[tuple[int | None, str, tuple[Any, ...], dict[str, Any]]] = field(default_factory=list)
    tag: int | None = None

    def _op(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.ops.append((self.tag, name, args, kwargs))

    def block(self, *args: Any, **kwargs: Any) -> None:
        self._op("block", args, kwargs)

    def plate(self, *args: Any, **kwargs: Any) -> None:
        self._op("plate", args, kwargs)

    def polygon(self, *args: Any, **kwargs: Any) -> None:
        self._op("polygon", args, kwargs)

    def rod(self, *args: Any, **kwargs: Any) -> None:
        self._op("rod", args, kwargs)

    def disc(self, *args: Any, **kwargs: Any) -> None:
        self._op("disc", args, kwargs)

    def post(self, *args: Any, **kwargs: Any) -> None:
        self._op("post", args, kwargs)

    def replay(self, canvas: Canvas) -> dict[int, Box]:
        """Draw every primitive; the union pixel box of each tag's primitives."""
        boxes: dict[int, Box] = {}
        for tag, name, args, kwargs in self.ops:
            box = getattr(canvas, name)(*args, **kwargs)
            if tag is None or box is None:
                continue
            old = boxes.get(tag)
            boxes[tag] = box if old is None else (min(old[0], box[0]), min(old[1], box[1]),
                                                  max(old[2], box[2]), max(old[3], box[3]))
        return boxes
