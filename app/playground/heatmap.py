"""Cosine similarity of embeddings, drawn as an SVG heatmap on the server."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from markupsafe import Markup

PALETTE = ("#440154", "#3b528b", "#21918c", "#5ec962", "#fde725")
"""viridis: perceptually even, readable for most colour-blind people, and fine on dark or light."""

LABEL_WIDTH = 230
HEADER = 30
LEGEND = 46
LABEL_CHARS = 30


def cosine_matrix(vectors: np.ndarray) -> np.ndarray:
    """Pairwise cosine similarity of the rows; a zero vector is similar to nothing."""
    matrix = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    unit = np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)
    return np.clip(unit @ unit.T, -1.0, 1.0)


def colour(value: float) -> str:
    """The palette colour for a similarity: 0 or less is the darkest, 1 the brightest."""
    t = min(max(value, 0.0), 1.0) * (len(PALETTE) - 1)
    low = min(int(t), len(PALETTE) - 2)
    frac = t - low
    a, b = PALETTE[low], PALETTE[low + 1]
    channels = (
        round(int(a[i : i + 2], 16) * (1 - frac) + int(b[i : i + 2], 16) * frac) for i in (1, 3, 5)
    )
    return "#" + "".join(f"{c:02x}" for c in channels)


def ink(value: float) -> str:
    """Text colour that stays readable on colour(value): the bright end needs dark text."""
    return "#1b1b1b" if value >= 0.55 else "#ffffff"


def shorten(text: str, limit: int = LABEL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


@dataclass(frozen=True, slots=True)
class Pair:
    first: int
    second: int
    similarity: float


def extremes(matrix: np.ndarray) -> tuple[Pair, Pair] | None:
    """The most and the least similar pair of different sentences, or None for fewer than two."""
    n = len(matrix)
    if n < 2:
        return None
    pairs = [Pair(i, j, float(matrix[i, j])) for i in range(n) for j in range(i + 1, n)]
    return (
        max(pairs, key=lambda p: p.similarity),
        min(pairs, key=lambda p: p.similarity),
    )


def cell_size(n: int) -> int:
    """Big cells for a few sentences, smaller ones as they grow, so the map stays on screen."""
    return 60 if n <= 6 else 48 if n <= 10 else 36 if n <= 16 else 28


def heatmap_svg(labels: list[str], matrix: np.ndarray) -> Markup:
    """An N x N heatmap with numbered rows and columns; each cell titles its value, and
    shows it when the cells are big enough."""
    n = len(labels)
    cell = cell_size(n)
    width = LABEL_WIDTH + n * cell + 8
    height = HEADER + n * cell + LEGEND
    show_values = cell >= 36
    out: list[Markup] = [
        Markup(
            '<svg class="heatmap" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" '
            'width="{w}" height="{h}" role="img" aria-labelledby="heatmap-title">'
            '<title id="heatmap-title">Cosine similarity of {n} sentences</title>'
        ).format(w=width, h=height, n=n)
    ]
    for j in range(n):
        x = LABEL_WIDTH + j * cell + cell / 2
        out.append(
            Markup('<text class="axis" x="{}" y="{}" text-anchor="middle">{}</text>').format(
                x, HEADER - 10, j + 1
            )
        )
    for i, label in enumerate(labels):
        y = HEADER + i * cell
        out.append(
            Markup(
                '<text class="axis" x="{x}" y="{y}" dominant-baseline="middle">'
                "<title>{full}</title>{num}. {short}</text>"
            ).format(x=4, y=y + cell / 2, full=label, num=i + 1, short=shorten(label))
        )
        for j in range(n):
            value = float(matrix[i, j])
            x = LABEL_WIDTH + j * cell
            pair = f"“{shorten(label, 60)}”\n“{shorten(labels[j], 60)}”"
            tip = f"{i + 1} and {j + 1}: {value:.2f}\n{pair}"
            out.append(
                Markup(
                    '<g class="cell" data-row="{i}" data-col="{j}">'
                    '<rect x="{x}" y="{y}" width="{s}" height="{s}" rx="3" fill="{fill}">'
                    "<title>{tip}</title></rect>"
                ).format(i=i, j=j, x=x + 1, y=y + 1, s=cell - 2, fill=colour(value), tip=tip)
            )
            if show_values:
                out.append(
                    Markup(
                        '<text x="{x}" y="{y}" text-anchor="middle" dominant-baseline="middle" '
                        'fill="{ink}" class="value">{v}</text>'
                    ).format(x=x + cell / 2, y=y + cell / 2, ink=ink(value), v=f"{value:.2f}")
                )
            out.append(Markup("</g>"))
    out.append(legend(LABEL_WIDTH, HEADER + n * cell + 14, max(n * cell, 200)))
    out.append(Markup("</svg>"))
    return Markup("").join(out)


def legend(x: int, y: int, width: int) -> Markup:
    stops = Markup("").join(
        Markup('<stop offset="{}" stop-color="{}"/>').format(i / (len(PALETTE) - 1), c)
        for i, c in enumerate(PALETTE)
    )
    return Markup(
        '<defs><linearGradient id="heatmap-scale">{stops}</linearGradient></defs>'
        '<rect x="{x}" y="{y}" width="{w}" height="10" rx="2" fill="url(#heatmap-scale)"/>'
        '<text class="axis small" x="{x}" y="{ty}">0 or less: unrelated</text>'
        '<text class="axis small" x="{xr}" y="{ty}" text-anchor="end">1: same meaning</text>'
    ).format(stops=stops, x=x, y=y, w=width, ty=y + 26, xr=x + width)
