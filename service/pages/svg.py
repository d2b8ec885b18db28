"""Pictures as SVG text: a deterministic tree layout and a circular network layout, computed in Python."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

FONT = "Noto Sans CJK SC, Source Han Sans SC, WenQuanYi Micro Hei, PingFang SC, Microsoft YaHei, sans-serif"
COLOURS = {
    "committee": "#1f4e79",
    "unit": "#2e75b6",
    "section": "#3d8b5a",
    "domain": "#7a6a3a",
    "mechanism": "#8e4f9e",
    "project": "#c0392b",
    "highlight": "#e67e22",
    "edge": "#9aa5b1",
}


@dataclass(frozen=True)
class Node:
    """One thing drawn: a key (its IRI), its label, a second line, a link and the role that sets its colour."""

    key: str
    label: str
    kind: str
    href: str | None = None
    sublabel: str = ""
    note: str = ""
    highlight: bool = False
    marks: tuple[str, ...] = field(default_factory=tuple)  # extra CSS classes, e.g. "stated"


@dataclass(frozen=True)
class Edge:
    """A line between two node keys, with its kind (a CSS class) and a tooltip."""

    source: str
    target: str
    kind: str
    title: str = ""
    highlight: bool = False


def text_width(text: str, size: float) -> float:
    """Estimated width in pixels of `text` at font size `size` (CJK glyphs are square, Latin ones narrower)."""
    return sum(size if ord(ch) > 0x2E80 else size * 0.56 for ch in text)


def fit(text: str, max_width: float, size: float) -> str:
    """`text`, cut with an ellipsis so that it fits into `max_width` pixels at font size `size`."""
    if text_width(text, size) <= max_width:
        return text
    while text and text_width(text + "…", size) > max_width:
        text = text[:-1]
    return text.rstrip() + "…"


def wrap(text: str, max_width: float, size: float, max_lines: int) -> list[str]:
    """`text` in at most `max_lines` lines of `max_width` pixels, broken between words (anywhere in CJK text);
    what does not fit ends the last line with an ellipsis."""
    pieces = re.findall(r"[\u2e80-\uffff]|[^\s\u2e80-\uffff]+|\s+", text.strip())
    lines: list[list[str]] = [[]]
    for piece in pieces:
        current = "".join(lines[-1])
        if current.strip() and not piece.isspace() and text_width(current.rstrip() + piece, size) > max_width:
            lines.append([])
        if lines[-1] or not piece.isspace():
            lines[-1].append(piece)
    kept = [*lines[: max_lines - 1], [piece for line in lines[max_lines - 1 :] for piece in line]]
    texts = ["".join(line).strip() for line in kept]
    texts[-1] = fit(texts[-1], max_width, size)
    return [line for line in texts if line]


def _num(value: float) -> str:
    """Coordinates rounded to one decimal, so the same data always gives the same bytes."""
    rounded = round(value, 1)
    return str(int(rounded)) if rounded == int(rounded) else str(rounded)


def _open_link(node: Node) -> str:
    classes = " ".join(["node", node.kind, *(["highlight"] if node.highlight else []), *node.marks])
    title = node.label + (f" — {node.sublabel}" if node.sublabel else "") + (f"\n{node.note}" if node.note else "")
    attrs = f'class="{classes}" data-kind="{node.kind}" data-key={quoteattr(node.key)}'
    if node.href:
        return f"<a href={quoteattr(node.href)} {attrs}><title>{escape(title)}</title>"
    return f"<g {attrs}><title>{escape(title)}</title>"


def _close_link(node: Node) -> str:
    return "</a>" if node.href else "</g>"


def _svg_open(width: float, height: float, title: str, description: str, css_class: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="picture {css_class}" viewBox="0 0 {_num(width)} '
        f'{_num(height)}" width="{_num(width)}" height="{_num(height)}" role="graphics-document" '
        f'aria-labelledby="{css_class}-title {css_class}-desc" font-family={quoteattr(FONT)}>',
        f'<title id="{css_class}-title">{escape(title)}</title>',
        f'<desc id="{css_class}-desc">{escape(description)}</desc>',
    ]


def tree_svg(nodes: Sequence[Node], parent: Mapping[str, str], title: str, description: str = "") -> str:
    """A top-down tree: leaves side by side in the given order, each parent centred over its children."""
    by_key = {node.key: node for node in nodes}
    children: dict[str | None, list[str]] = {}
    for node in nodes:
        up = parent.get(node.key)
        children.setdefault(up if up in by_key else None, []).append(node.key)

    leaf_w, leaf_h, inner_w, inner_h, gap, level_h, margin = 124.0, 92.0, 320.0, 64.0, 10.0, 124.0, 16.0
    x: dict[str, float] = {}
    depth: dict[str, int] = {}
    next_leaf = [margin + leaf_w / 2]

    def place(key: str, level: int) -> None:
        depth[key] = level
        kids = children.get(key, [])
        for kid in kids:
            place(kid, level + 1)
        if kids:
            x[key] = (x[kids[0]] + x[kids[-1]]) / 2
        else:
            x[key] = next_leaf[0]
            next_leaf[0] += leaf_w + gap

    for root in children.get(None, []):
        place(root, 0)
    if not x:
        return "\n".join([*_svg_open(200, 40, title, description, "tree"), "</svg>"])
    width = max(next_leaf[0] - gap - leaf_w / 2 + margin, inner_w + 2 * margin)
    shift = max(0.0, (inner_w / 2 + margin) - min(x.values()))
    height = margin * 2 + max(depth.values()) * level_h + leaf_h

    def box(key: str) -> tuple[float, float, float, float]:
        w, h = (inner_w, inner_h) if children.get(key) else (leaf_w, leaf_h)
        return x[key] + shift - w / 2, margin + depth[key] * level_h, w, h

    out = _svg_open(width + shift, height, title, description, "tree")
    out.append('<g class="edges" fill="none" stroke="#9aa5b1" stroke-width="1.5">')
    for key in x:
        up = parent.get(key)
        if up not in x:
            continue
        px, py, pw, ph = box(up)
        cx, cy, cw, _ = box(key)
        mid = (py + ph + cy) / 2
        out.append(
            f'<path class="edge" d="M{_num(px + pw / 2)} {_num(py + ph)} V{_num(mid)} '
            f'H{_num(cx + cw / 2)} V{_num(cy)}"/>'
        )
    out.append("</g>")
    for node in nodes:
        if node.key not in x:
            continue
        bx, by, bw, bh = box(node.key)
        colour = COLOURS.get(node.kind, COLOURS["unit"])
        out.append(_open_link(node))
        out.append(
            f'<rect x="{_num(bx)}" y="{_num(by)}" width="{_num(bw)}" height="{_num(bh)}" rx="6" '
            f'fill="{colour}" stroke="#ffffff" stroke-width="1"/>'
        )
        label_size = 13.0 if bw == leaf_w else 14.0
        lines = [(line, label_size, "600") for line in wrap(node.label, bw - 12, label_size, 2)]
        lines += [(line, 10.5, "400") for line in wrap(node.sublabel, bw - 12, 10.5, 3 - len(lines))]
        lines += [(line, 10.0, "400") for line in wrap(node.note, bw - 12, 10.0, 2)]
        top = by + (bh - sum(size * 1.3 for _, size, _ in lines)) / 2
        for text, size, weight in lines:
            top += size * 1.3
            out.append(
                f'<text x="{_num(bx + bw / 2)}" y="{_num(top - size * 0.3)}" text-anchor="middle" '
                f'font-size="{_num(size)}" font-weight="{weight}" fill="#ffffff">{escape(text)}</text>'
            )
        out.append(_close_link(node))
    out.append("</svg>")
    return "\n".join(out)


def _polar(cx: float, cy: float, radius: float, angle: float) -> tuple[float, float]:
    return cx + radius * math.cos(angle), cy + radius * math.sin(angle)


def network_svg(
    ring: Sequence[Node],
    hubs: Sequence[Node],
    outer: Mapping[str, Sequence[Node]],
    edges: Sequence[Edge],
    focus: Node | None,
    title: str,
    description: str = "",
) -> str:
    """A circular layout: `ring` nodes on a circle, `hubs` on a small inner circle, `focus` at the centre,
    and each ring node's `outer` nodes fanned out in its own sector beyond the circle."""
    size, ring_r, hub_r, outer_r = 1060.0, 230.0, 120.0, 345.0
    cx = cy = size / 2
    pos: dict[str, tuple[float, float]] = {}
    angles: dict[str, float] = {}
    step = 2 * math.pi / max(len(ring), 1)
    for i, node in enumerate(ring):
        angle = -math.pi / 2 + i * step
        angles[node.key] = angle
        pos[node.key] = _polar(cx, cy, ring_r, angle)
    for i, node in enumerate(hubs):
        angle = -math.pi / 2 + (i + 0.5) * 2 * math.pi / max(len(hubs), 1)
        pos[node.key] = _polar(cx, cy, hub_r if focus else hub_r * 0.6, angle)
    outer_angle: dict[str, float] = {}
    outer_nodes: dict[str, Node] = {}
    for key, fanned in outer.items():
        if key not in angles:
            continue
        count = len(fanned)
        spread = step * 0.82
        for j, node in enumerate(fanned):
            if node.key in pos:
                continue  # a shared node keeps the place of the first ring node that fans it out
            offset = (j - (count - 1) / 2) * (spread / max(count, 1))
            outer_angle[node.key] = angles[key] + offset
            outer_nodes[node.key] = node
            pos[node.key] = _polar(cx, cy, outer_r, outer_angle[node.key])
    if focus:
        pos[focus.key] = (cx, cy)

    out = _svg_open(size, size, title, description, "network")
    out.append('<g class="edges" fill="none">')
    for edge in sorted(edges, key=lambda e: e.highlight):
        if edge.source not in pos or edge.target not in pos:
            continue
        (x1, y1), (x2, y2) = pos[edge.source], pos[edge.target]
        colour = COLOURS["highlight"] if edge.highlight else COLOURS["edge"]
        width = "2.5" if edge.highlight else "1.2"
        dash = ' stroke-dasharray="5 4"' if edge.kind == "stated" else ""
        out.append(
            f'<line class="edge {edge.kind}{" highlight" if edge.highlight else ""}" x1="{_num(x1)}" y1="{_num(y1)}" '
            f'x2="{_num(x2)}" y2="{_num(y2)}" stroke="{colour}" stroke-width="{width}"{dash}>'
            f"<title>{escape(edge.title)}</title></line>"
        )
    out.append("</g>")

    for node in ring:
        px, py = pos[node.key]
        fill = COLOURS["highlight"] if node.highlight else COLOURS.get(node.kind, COLOURS["section"])
        ring_mark = ""
        if "stated" in node.marks:
            ring_mark = (
                f'<circle cx="{_num(px)}" cy="{_num(py)}" r="38" fill="none" stroke="{COLOURS["project"]}" '
                'stroke-width="2" stroke-dasharray="5 4"/>'
            )
        out.append(_open_link(node))
        out.append(ring_mark)
        out.append(f'<circle cx="{_num(px)}" cy="{_num(py)}" r="31" fill="{fill}" stroke="#ffffff" stroke-width="2"/>')
        out.append(
            f'<text x="{_num(px)}" y="{_num(py + 5)}" text-anchor="middle" font-size="13" font-weight="600" '
            f'fill="#ffffff">{escape(fit(node.label, 58, 13))}</text>'
        )
        if node.sublabel:
            out.append(
                f'<text x="{_num(px)}" y="{_num(py + 47)}" text-anchor="middle" font-size="10.5" '
                f'fill="#333333">{escape(fit(node.sublabel, 136, 10.5))}</text>'
            )
        out.append(_close_link(node))

    for node in hubs:
        px, py = pos[node.key]
        w = min(max(text_width(node.label, 11.5) + 16, 56), 176)
        out.append(_open_link(node))
        out.append(
            f'<rect x="{_num(px - w / 2)}" y="{_num(py - 13)}" width="{_num(w)}" height="26" rx="13" '
            f'fill="{COLOURS["mechanism"]}" stroke="#ffffff" stroke-width="1.5"/>'
        )
        out.append(
            f'<text x="{_num(px)}" y="{_num(py + 4)}" text-anchor="middle" font-size="11.5" '
            f'fill="#ffffff">{escape(fit(node.label, w - 12, 11.5))}</text>'
        )
        out.append(_close_link(node))

    for key, angle in outer_angle.items():
        node = outer_nodes[key]
        px, py = pos[key]
        degrees = math.degrees(angle)
        flip = 90 < degrees % 360 < 270
        rotation = degrees + 180 if flip else degrees
        lx, ly = _polar(cx, cy, outer_r + 9, angle)
        colour = COLOURS["highlight"] if node.highlight else COLOURS["domain"]
        out.append(_open_link(node))
        out.append(f'<circle cx="{_num(px)}" cy="{_num(py)}" r="5" fill="{colour}"/>')
        weight = "700" if node.highlight else "400"
        out.append(
            f'<text x="{_num(lx)}" y="{_num(ly)}" font-size="11" font-weight="{weight}" dominant-baseline="middle" '
            f'text-anchor="{"end" if flip else "start"}" fill="{colour}" '
            f'transform="rotate({_num(rotation)} {_num(lx)} {_num(ly)})">{escape(fit(node.label, 165, 11))}</text>'
        )
        out.append(_close_link(node))

    if focus:
        w = min(max(text_width(focus.label, 12.5) + 20, 80), 230)
        out.append(_open_link(focus))
        out.append(
            f'<rect x="{_num(cx - w / 2)}" y="{_num(cy - 16)}" width="{_num(w)}" height="32" rx="5" '
            f'fill="{COLOURS["project"]}" stroke="#ffffff" stroke-width="2"/>'
        )
        out.append(
            f'<text x="{_num(cx)}" y="{_num(cy + 5)}" text-anchor="middle" font-size="12.5" font-weight="600" '
            f'fill="#ffffff">{escape(fit(focus.label, w - 14, 12.5))}</text>'
        )
        out.append(_close_link(focus))
    out.append("</svg>")
    return "\n".join(out)
