"""``ee.Clusterer``: k-means (``wekaKMeans``) trained on a feature collection; ``Image.cluster`` and
``FeatureCollection.cluster``.

scikit-learn's ``KMeans`` underneath, seeded (``seed``), one random initialisation as Weka's
SimpleKMeans does (``init`` 0, random) or k-means++ (``init`` 1). Cluster numbers are 0..k-1 in the
order the fitted centres come out, which need not match Weka's numbering (docs/local_engine.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from gee_fusion.errors import EngineError
from gee_fusion.local.algorithms._common import feature_matrix, subsample
from gee_fusion.local.image import Band, FuncNode, Image, Pixels
from gee_fusion.local.registry import algorithm
from gee_fusion.local.values import FeatureCollection


@dataclass(frozen=True)
class Clusterer:
    """An Earth Engine clusterer: kind, options and, once trained, its inputs and model."""

    kind: str
    params: dict[str, Any]
    inputs: tuple[str, ...] = ()
    model: Any = field(default=None, compare=False)

    def to_info(self) -> dict[str, Any]:
        """A readable JSON form."""
        return {"type": "Clusterer", "kind": self.kind, "params": self.params, "inputs": list(self.inputs)}


@algorithm("Clusterer.wekaKMeans")
def weka_kmeans(nClusters: int, init: int = 0, canopies: bool = False, maxCandidates: int = 100,
                periodicPruning: int = 10000, minDensity: int = 2, t1: float = -1.5, t2: float = -1,
                distanceFunction: str = "Euclidean", maxIterations: int | None = None,
                preserveOrder: bool = False, fast: bool = False, seed: int = 10) -> Clusterer:  # fmt: skip
    """k-means with ``nClusters`` clusters (Euclidean distance; ``init`` 0 random, 1 k-means++)."""
    if int(nClusters) < 1:
        raise EngineError(f"Clusterer.wekaKMeans: nClusters must be at least 1, got {nClusters}.")
    if distanceFunction != "Euclidean":
        raise EngineError(
            f"Clusterer.wekaKMeans: distanceFunction {distanceFunction!r} is not supported locally "
            "(Euclidean is)."
        )
    if int(init) not in (0, 1):
        raise EngineError("Clusterer.wekaKMeans: init 0 (random) and 1 (k-means++) are supported locally.")
    return Clusterer("wekaKMeans", {"k": int(nClusters), "init": int(init), "seed": int(seed),
                                    "max_iter": int(maxIterations) if maxIterations else 500})  # fmt: skip


@algorithm("Clusterer.train")
def clusterer_train(clusterer: Clusterer, features: FeatureCollection,
                    inputProperties: list[str] | None = None, subsampling: float = 1.0,
                    subsamplingSeed: int = 0) -> Clusterer:  # fmt: skip
    """Fit the clusterer on the features' ``inputProperties`` (default: all non-system properties)."""
    from sklearn.cluster import KMeans

    rows = list(features.elements)
    if not rows:
        raise EngineError("Clusterer.train: the training collection is empty.")
    names = list(inputProperties) if inputProperties is not None else [
        k for k in rows[0].properties if not k.startswith("system:")]  # fmt: skip
    x = feature_matrix(subsample(rows, subsampling, subsamplingSeed), names, "Clusterer.train")
    p = clusterer.params
    if len(x) < p["k"]:
        raise EngineError(f"Clusterer.train: {len(x)} features cannot make {p['k']} clusters.")
    model = KMeans(n_clusters=p["k"], init="random" if p["init"] == 0 else "k-means++", n_init=1,
                   max_iter=p["max_iter"], random_state=p["seed"]).fit(x)  # fmt: skip
    return replace(clusterer, inputs=tuple(names), model=model)


def _trained(clusterer: Any, where: str) -> Clusterer:
    if not isinstance(clusterer, Clusterer) or clusterer.model is None:
        raise EngineError(f"{where}: the clusterer is not trained (call train() first).")
    return clusterer


@algorithm("Image.cluster")
def image_cluster(image: Image, clusterer: Any, outputName: str = "cluster") -> Image:
    """The nearest cluster of every pixel, from the bands named like the clusterer's inputs."""
    c = _trained(clusterer, "Image.cluster")
    by_name = {b.name: b for b in image.bands}
    missing = [k for k in c.inputs if k not in by_name]
    if missing:
        raise EngineError(f"Image.cluster: Pattern '{missing[0]}' did not match any bands.")

    def fn(*pixels: Pixels) -> Pixels:
        mask = np.logical_and.reduce([np.asarray(m, bool) for _, m in pixels])
        out = np.zeros(mask.shape, dtype=np.int32)
        if mask.any():
            x = np.stack([np.asarray(v, np.float64)[mask] for v, _ in pixels], axis=1)
            out[mask] = c.model.predict(x)
        return out, mask

    first = by_name[c.inputs[0]]
    node = FuncNode(fn, [by_name[k].node for k in c.inputs])
    k = c.params["k"]
    return image.with_bands([Band(outputName, np.dtype(np.int32), node, first.projection, first.dimensions,
                                  (0, k - 1))])  # fmt: skip


@algorithm("FeatureCollection.cluster")
def features_cluster(
    features: FeatureCollection, clusterer: Any, outputName: str = "cluster"
) -> FeatureCollection:
    """Add each feature's nearest cluster as ``outputName``."""
    c = _trained(clusterer, "FeatureCollection.cluster")
    rows = list(features.elements)
    if not rows:
        return features
    labels = c.model.predict(feature_matrix(rows, list(c.inputs), "FeatureCollection.cluster"))
    return features.with_elements(
        [f.with_properties({**f.properties, outputName: int(v)}) for f, v in zip(rows, labels, strict=True)]
    )
