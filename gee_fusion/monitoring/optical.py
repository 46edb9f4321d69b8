"""Classification-based change for monthly monitoring: an in-cloud Random Forest classifies every
month, and land-cover transitions that persist are changes.

Each month's features are the Cloud Score+ masked Sentinel-2 median (10 bands, reflectance) with
NDVI and NDBI, and the Sentinel-1 monthly mean (VV, VH, VV/VH in dB). Clouds leave holes in the
optical median (most months over Normandy), so two forests are trained on reference months:
S1 + S2 where the month has a clear observation, S1 alone elsewhere; every pixel of every month
gets a class and the source it came from. Classes are gee_fusion's 6-class grouping (urban
fabric, specialized areas and networks, agriculture, grassland, woody, water/wetland/open).

:func:`persistent_changes` turns the monthly class maps into changes (numpy, after fetching): a
pixel changes at month t when its class is one class for ``persist`` months before t and another
for ``persist`` months from t on. A single cloudy or speckled month cannot make (or break) a
change, at the cost of confirming it ``persist - 1`` months late.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

import ee
import numpy as np

from gee_fusion import ids
from gee_fusion.classic.cloud_rf import RFOptions
from gee_fusion.errors import DataError
from gee_fusion.recipe.monthly_stacks import S1_BANDS, S2_DEFAULT_BANDS, StackRecipe, s1_monthly, s2_monthly

S2_FEATURES = (*S2_DEFAULT_BANDS, "NDVI", "NDBI")
S1_FEATURES = S1_BANDS
CLASS_BAND = "label6"
"""The reference band of ``local/demo/LABELS_MONTHLY`` (or a user's labels) the forests learn."""
CONFIDENCE_BAND = "confidence"
"""Band of :func:`classify_month`: the share of the forest's trees voting for the class it gave."""
NO_BACKSCATTER = -9999.0
"""``VV`` / ``VH`` of :func:`classify_month` where a month has no Sentinel-1 acquisition."""
BUILT_6 = (1, 2)
"""Built-up classes of the 6-class grouping: urban fabric; specialized areas and networks."""
UNBUILT_6 = (3, 4, 5, 6)
"""The other classes: agriculture, grassland, woody, water / wetland / open."""


def class_stack(classes: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """Monthly class maps as one (months, rows, cols) array (an array is used as it is, not copied)."""
    if isinstance(classes, np.ndarray):
        return classes
    return np.stack([np.asarray(c) for c in classes])


def class_at(stack: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Per pixel, the class of month ``index`` (clipped to the first month)."""
    return np.take_along_axis(stack, np.maximum(index, 0)[None], 0)[0]


def month_features(aoi: ee.Geometry, month: date) -> tuple[ee.Image, ee.Image]:
    """(S1 + S2 features, S1 features) of one month over ``aoi``; the S1 + S2 image is masked
    where the month has no clear Sentinel-2 observation."""
    recipe = StackRecipe(year=month.year, months=[month.month])
    s2 = ee.Image(s2_monthly(recipe, aoi).first()).select(list(S2_DEFAULT_BANDS))
    nir, red, swir = s2.select("B8"), s2.select("B4"), s2.select("B11")
    ndvi = nir.subtract(red).divide(nir.add(red)).rename("NDVI")
    ndbi = swir.subtract(nir).divide(swir.add(nir)).rename("NDBI")
    s1 = ee.Image(s1_monthly(recipe, aoi).first()).select(list(S1_FEATURES))
    return ee.Image.cat([s2, ndvi, ndbi, s1]), s1


@dataclass(frozen=True)
class MonthlyForests:
    """The two forests trained on the reference months."""

    fused: ee.Classifier
    s1_only: ee.Classifier
    months: tuple[date, ...]


def train_forests(
    aoi: ee.Geometry,
    months: Sequence[date],
    labels: Callable[[date], ee.Image],
    *,
    points_per_class: int = 200,
    rf: RFOptions | None = None,
) -> MonthlyForests:
    """Train the S1 + S2 and the S1-only forests on samples of several reference months.

    One month would teach the forests one season: arable land in October (bare, wet soil) looks
    like nothing they saw in July, and every field would "change". Samples are drawn in each of
    ``months`` (e.g. one per season) against that month's labels and pooled.

    Args:
        aoi: The area (samples are drawn inside it).
        months: The reference months.
        labels: The reference classes of a month (6-class codes in band ``label6``), e.g.
            :func:`reference_labels` on the demo world.
        points_per_class: Stratified samples per class and month.
        rf: The forests' options (the in-cloud RF job's; default 60 trees); its seed also seeds
            the sampling.

    Raises:
        DataError: With no reference month.
    """
    if not months:
        raise DataError("Train the monthly forests on at least one reference month.")
    options = rf or RFOptions(number_of_trees=60)
    seed = options.seed
    s1_names = [f"{b}_s1" for b in S1_FEATURES]
    parts = []
    for k, month in enumerate(months):
        fused, s1 = month_features(aoi, month)
        sample = fused.addBands(s1.rename(s1_names)).addBands(labels(month).select(CLASS_BAND))
        parts.append(
            sample.stratifiedSample(
                numPoints=points_per_class, classBand=CLASS_BAND, region=aoi, scale=10, seed=seed + k,
                dropNulls=False,
            )
        )  # fmt: skip
    points = inline_samples(ee.FeatureCollection(parts).flatten())
    forest = options.classifier()
    optical_points = points.filter(ee.Filter.notNull(list(S2_FEATURES)))
    return MonthlyForests(
        fused=forest.train(optical_points, CLASS_BAND, list(S2_FEATURES) + list(S1_FEATURES)),
        s1_only=forest.train(points, CLASS_BAND, s1_names),
        months=tuple(months),
    )


def inline_samples(points: ee.FeatureCollection) -> ee.FeatureCollection:
    """The samples brought here once and sent back inline: every request that applies the forests
    (one per tile and month) then carries the samples instead of drawing them again from the
    reference months' composites (which would cost more than classifying the tile)."""
    info = points.getInfo() or {}
    return ee.FeatureCollection([ee.Feature(None, f.get("properties", {})) for f in info.get("features", [])])


def vote_share(image: ee.Image, forest: ee.Classifier) -> ee.Image:
    """Per pixel, the share of ``forest``'s trees voting for the class it gives (0-1): the largest
    of its ``MULTIPROBABILITY`` outputs, which does not depend on the order Earth Engine gives the
    classes in."""
    votes = image.classify(forest.setOutputMode("MULTIPROBABILITY"))
    return votes.arrayReduce(ee.Reducer.max(), [0]).arrayFlatten([[CONFIDENCE_BAND]])


def classify_month(
    forests: MonthlyForests, aoi: ee.Geometry, month: date, *, backscatter: bool = False
) -> ee.Image:
    """Bands ``class`` (6-class codes), ``source`` (1: S1 + S2, 2: S1 only) and ``confidence`` (the
    share of the trees of the forest used that voted for the class, float 0-1: a per-pixel
    confidence, low where cloud remnants or speckle blur the features) of one month; with
    ``backscatter``, also the month's Sentinel-1 means ``VV`` and ``VH`` the forests saw (dB, float;
    :data:`NO_BACKSCATTER` where the month has no acquisition), for flood mapping (:mod:`.flood`)."""
    fused, s1 = month_features(aoi, month)
    radar_input = s1.rename([f"{b}_s1" for b in S1_FEATURES])
    optical = fused.classify(forests.fused)
    radar = radar_input.classify(forests.s1_only)
    clear = optical.mask().reduce(ee.Reducer.min())
    label = radar.where(clear, optical.unmask(0)).rename("class").toUint8()
    source = ee.Image.constant(2).where(clear, 1).rename("source").toUint8()
    share = vote_share(radar_input, forests.s1_only).where(clear, vote_share(fused, forests.fused).unmask(0))
    out = label.addBands(source).addBands(share.toFloat().rename(CONFIDENCE_BAND))
    return out.addBands(s1.select(["VV", "VH"]).toFloat().unmask(NO_BACKSCATTER)) if backscatter else out


def worldcover_labels(month: date) -> ee.Image:
    """ESA WorldCover (2021) in the 6-class grouping (``classes.WORLDCOVER_TO_6``), the same for
    every month: a reference where no monthly truth exists (built-up can only be urban fabric)."""
    from gee_fusion.classes import WORLDCOVER_TO_6

    keys = sorted(WORLDCOVER_TO_6)
    cover = ee.ImageCollection(ids.WORLDCOVER).first().select("Map")
    return cover.remap(keys, [WORLDCOVER_TO_6[k] for k in keys]).toInt().rename(CLASS_BAND)


def reference_labels(month: date) -> ee.Image:
    """The demo world's truth of a month (``local/demo/LABELS_MONTHLY``), for training there."""
    start = ee.Date.fromYMD(month.year, month.month, 1)
    return ee.Image(
        ee.ImageCollection(ids.DEMO_LABELS_MONTHLY).filterDate(start, start.advance(1, "month")).first()
    )


@dataclass(frozen=True)
class Transitions:
    """Persistent class transitions: per pixel, the month index of the first change (-1: none),
    the class before and after it."""

    onset: np.ndarray
    before: np.ndarray
    after: np.ndarray


def persistent_changes(
    classes: Sequence[np.ndarray] | np.ndarray,
    *,
    persist: int = 2,
    keep: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    accept: Callable[[int], np.ndarray] | None = None,
) -> Transitions:
    """The first persistent class change of each pixel in a series of monthly class maps.

    A change at month index t (1 <= t, t + persist <= len): months t - persist .. t - 1 share one
    class, months t .. t + persist - 1 share another.

    Args:
        classes: Monthly class maps, in month order.
        persist: Months each side of a change must hold its class.
        keep: Which changes count, from the class before and after (arrays) to a boolean array:
            with it, the first persistent change of that kind (an earlier change of another
            kind, e.g. grassland to cropland, does not hide a later urbanisation). Default: any.
        accept: Where a change at month index t counts (a boolean array per t), e.g. where it
            lasts (:func:`gee_fusion.monitoring.fusion.lasting_change`): with it, the first change
            that counts, so a change that reverted does not hide a later one. Default: every one.

    Raises:
        DataError: When the series is shorter than ``2 * persist`` months or ``persist`` < 1.
    """
    if persist < 1 or len(classes) < 2 * persist:
        raise DataError(
            f"A persistent change needs persist >= 1 and at least {2 * persist} months, "
            f"got persist={persist} and {len(classes)} months."
        )
    stack = class_stack(classes)
    t_count = stack.shape[0]
    onset = np.full(stack.shape[1:], -1, dtype=np.int32)
    before = np.zeros(stack.shape[1:], dtype=stack.dtype)
    after = np.zeros(stack.shape[1:], dtype=stack.dtype)
    for t in range(persist, t_count - persist + 1):
        pre, post = stack[t - persist : t], stack[t : t + persist]
        stable_pre = (pre == pre[0]).all(axis=0)
        stable_post = (post == post[0]).all(axis=0)
        hit = stable_pre & stable_post & (pre[0] != post[0]) & (onset < 0)
        if keep is not None:
            hit &= keep(pre[0], post[0])
        if accept is not None:
            hit &= accept(t)
        onset[hit], before[hit], after[hit] = t, pre[0][hit], post[0][hit]
    return Transitions(onset, before, after)
