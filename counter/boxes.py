"""Axis-aligned boxes in photo pixels and how they compare (IoU, matching)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Box:
    """``[x0, y0, x1, y1)`` in pixels of the photo it was found in."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def area(self) -> int:
        return max(0, self.x1 - self.x0) * max(0, self.y1 - self.y0)

    def as_list(self) -> list[int]:
        return [self.x0, self.y0, self.x1, self.y1]

    def gap(self, other: Box) -> int:
        """Pixels between the two boxes (0 when they touch or overlap)."""
        dx = max(other.x0 - self.x1, self.x0 - other.x1, 0)
        dy = max(other.y0 - self.y1, self.y0 - other.y1, 0)
        return max(dx, dy)

    def padded(self, fraction: float, width: int, height: int) -> Box:
        """Grown by ``fraction`` of its size on each side, clipped to the photo."""
        px, py = round((self.x1 - self.x0) * fraction), round((self.y1 - self.y0) * fraction)
        return Box(max(0, self.x0 - px), max(0, self.y0 - py), min(width, self.x1 + px), min(height, self.y1 + py))


def iou(a: Box, b: Box) -> float:
    inter = Box(max(a.x0, b.x0), max(a.y0, b.y0), min(a.x1, b.x1), min(a.y1, b.y1))
    if inter.x1 <= inter.x0 or inter.y1 <= inter.y0:
        return 0.0
    union = a.area + b.area - inter.area
    return inter.area / union if union else 0.0


def match(found: list[Box], truth: list[Box], threshold: float = 0.5) -> list[tuple[int, int]]:
    """Greedy one-to-one matching by IoU (best pairs first): ``(found index, truth index)`` pairs."""
    pairs = sorted(((iou(f, t), i, j) for i, f in enumerate(found) for j, t in enumerate(truth)), reverse=True)
    used_f: set[int] = set()
    used_t: set[int] = set()
    out = []
    for value, i, j in pairs:
        if value < threshold:
            break
        if i not in used_f and j not in used_t:
            used_f.add(i)
            used_t.add(j)
            out.append((i, j))
    return out


def reading_order(boxes: list[Box], row_fraction: float = 0.5) -> list[int]:
    """Indices of ``boxes`` top to bottom in rows, left to right within a row (a row: centres within
    ``row_fraction`` of the median box height)."""
    if not boxes:
        return []
    heights = sorted(b.y1 - b.y0 for b in boxes)
    band = max(1.0, heights[len(heights) // 2] * row_fraction)
    centre = [((b.x0 + b.x1) / 2, (b.y0 + b.y1) / 2) for b in boxes]
    order = sorted(range(len(boxes)), key=lambda i: centre[i][1])
    rows: list[list[int]] = []
    for i in order:
        if rows and centre[i][1] - centre[rows[-1][0]][1] <= band:
            rows[-1].append(i)
        else:
            rows.append([i])
    return [i for row in rows for i in sorted(row, key=lambda k: centre[k][0])]
