"""A 2-D map of sentences by their embeddings (PCA, sign-fixed), their nearest neighbours, and
how much two models agree on those neighbours; the map drawn as SVG on the server."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from localoip.app.playground.heatmap import cosine_matrix, shorten
from markupsafe import Markup

SIZE = 360
"""The map's width and height in SVG units."""
MARGIN = 26
NEIGHBOURS = 3
"""How many nearest neighbours a click lists, and two models are compared by."""


def pca_2d(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows projected on their first two principal components, and the share of the
    variance each explains: shapes (n, 2) and (2,), float64.

    PCA is an SVD of the centred rows (the vectors as the model gives them, not normalised).
    An SVD fixes each component only up to its sign, so the sign is chosen: the entry of the
    component with the largest magnitude is positive (the lowest index wins a tie). Fewer than
    two non-zero components (two sentences, or identical ones) leave zeros in the rest.
    """
    matrix = np.asarray(vectors, dtype=np.float64)
    centred = matrix - matrix.mean(axis=0)
    _, singular, components = np.linalg.svd(centred, full_matrices=False)
    components = components[:2]
    for k, component in enumerate(components):
        if component[np.argmax(np.abs(component))] < 0:
            components[k] = -component
    coords = np.zeros((len(matrix), 2))
    variance = singular**2
    share = np.zeros(2)
    kept = [k for k in range(min(2, len(singular))) if singular[k] > 1e-9 * max(singular[0], 1.0)]
    for k in kept:
        coords[:, k] = centred @ components[k]
        share[k] = variance[k] / variance.sum()
    return coords, share


def neighbour_count(n: int) -> int:
    """How many neighbours of n sentences to list: NEIGHBOURS, at most half of the others
    (of 4 others, any 3 share at least 2, and an overlap of them would say little); at least 1."""
    return max(1, min(NEIGHBOURS, (n - 1) // 2))


def nearest(vectors: np.ndarray, k: int | None = None) -> list[list[int]]:
    """For each row, the indices of the k other rows most alike by cosine, most alike first
    (the lower index first among equals); k is neighbour_count(n) unless given."""
    similarity = cosine_matrix(vectors)
    n = len(similarity)
    k = min(neighbour_count(n) if k is None else k, n - 1)
    out = []
    for i in range(n):
        others = [j for j in range(n) if j != i]
        others.sort(key=lambda j: (-similarity[i, j], j))
        out.append(others[:k])
    return out


def overlap(first: list[list[int]], second: list[list[int]]) -> list[float]:
    """Per sentence, the share of its neighbours both models name (1: the same set)."""
    return [len(set(a) & set(b)) / len(a) if a else 1.0 for a, b in zip(first, second, strict=True)]


@dataclass(frozen=True, slots=True)
class Point:
    """A sentence on the map: its PCA coordinates and where it is drawn."""

    index: int
    x: float
    y: float
    px: float
    py: float


def points(coords: np.ndarray) -> list[Point]:
    """Coordinates scaled into the square, one scale for both axes so distances stay true;
    y grows upwards as on a chart."""
    span = float(np.max(np.abs(coords))) if coords.size else 0.0
    scale = (SIZE / 2 - MARGIN) / span if span > 0 else 0.0
    centre = SIZE / 2
    return [
        Point(i, float(x), float(y), round(centre + x * scale, 2), round(centre - y * scale, 2))
        for i, (x, y) in enumerate(coords)
    ]


def map_svg(labels: list[str], coords: np.ndarray, share: np.ndarray) -> Markup:
    """The sentences as numbered points; each titles its text (shown on hover) and carries its
    exact coordinates in data-x and data-y. A point is a button: the page lists its neighbours."""
    drawn = points(coords)
    c = SIZE / 2
    out = [
        Markup(
            '<svg class="embedding-map" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {s} {s}" '
            'width="{s}" height="{s}" role="group" aria-labelledby="map-title">'
            '<title id="map-title">The sentences on their two main directions</title>'
            '<line class="map-axis" x1="{m}" y1="{c}" x2="{e}" y2="{c}"/>'
            '<line class="map-axis" x1="{c}" y1="{m}" x2="{c}" y2="{e}"/>'
            '<text class="axis small" x="{e}" y="{ty}" text-anchor="end">PC1 {p1:.0%}</text>'
            '<text class="axis small" x="{tx}" y="{m}">PC2 {p2:.0%}</text>'
        ).format(
            s=SIZE,
            c=c,
            m=MARGIN / 2,
            e=SIZE - MARGIN / 2,
            ty=c - 6,
            tx=c + 6,
            p1=float(share[0]),
            p2=float(share[1]),
        )
    ]
    for point in drawn:
        label = labels[point.index]
        out.append(
            Markup(
                '<g class="map-point" tabindex="0" role="button" data-point="{i}" '
                'data-x="{x!r}" data-y="{y!r}" aria-label="{n}. {full}">'
                "<title>{n}. {full}</title>"
                '<circle cx="{px}" cy="{py}" r="8"/>'
                '<text x="{px}" y="{py}" text-anchor="middle" dominant-baseline="central">'
                "{n}</text>"
                "</g>"
            ).format(
                i=point.index,
                x=point.x,
                y=point.y,
                n=point.index + 1,
                full=shorten(label, 200),
                px=point.px,
                py=point.py,
            )
        )
    out.append(Markup("</svg>"))
    return Markup("").join(out)
