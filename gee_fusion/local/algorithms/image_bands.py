"""Image algorithms that manage bands, types and properties: load, constant, select, rename,
addBands, casts, date, projection metadata."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from gee_fusion.errors import BandNotFoundError, EngineError
from gee_fusion.local.algorithms._common import as_image, constant_image
from gee_fusion.local.catalog import CATALOG
from gee_fusion.local.grid import Projection, parse_transform
from gee_fusion.local.image import Band, FuncNode, Image, Pixels, dtype_from_ee, pixel_type_info
from gee_fusion.local.registry import algorithm
from gee_fusion.local.sources import LeafNode
from gee_fusion.local.values import Date


@algorithm("Image.load")
def image_load(id: str, version: int | None = None) -> Image:
    """Load an image asset from the local catalog."""
    return CATALOG.load_image(id)


@algorithm("Image.constant")
def image_constant(value: Any) -> Image:
    """A constant image; a list gives one band per value."""
    return constant_image(value)


def select_bands(image: Image, selectors: list[Any]) -> list[Band]:
    """Bands matched by names, regular expressions (full match) or indices, in selector order."""
    out: list[Band] = []
    for sel in selectors:
        if isinstance(sel, bool) or not isinstance(sel, (str, int, float)):
            raise EngineError(f"Image.select: invalid band selector {sel!r}.")
        if isinstance(sel, (int, float)):
            idx = int(sel)
            if not 0 <= idx < len(image.bands):
                raise BandNotFoundError(
                    f"Image.select: Band index {idx} out of range [0, {len(image.bands) - 1}]."
                )
            out.append(image.bands[idx])
            continue
        try:
            pattern = re.compile(sel)
        except re.error:
            pattern = re.compile(re.escape(sel))
        hits = [b for b in image.bands if pattern.fullmatch(b.name)]
        if not hits:
            raise BandNotFoundError(f"Image.select: Pattern '{sel}' did not match any bands.")
        out.extend(hits)
    return out


@algorithm("Image.select")
def image_select(input: Image, bandSelectors: list[Any], newNames: list[str] | None = None) -> Image:
    """Select bands by name, regex or index, optionally renaming them."""
    selectors = bandSelectors if isinstance(bandSelectors, list) else [bandSelectors]
    bands = select_bands(as_image(input), selectors)
    if newNames is not None:
        if len(newNames) != len(bands):
            raise EngineError(
                f"Image.select: The number of new names ({len(newNames)}) must match the "
                f"number of selected bands ({len(bands)})."
            )
        bands = [b.renamed(str(n)) for b, n in zip(bands, newNames, strict=True)]
    _check_unique([b.name for b in bands], "Image.select")
    return input.with_bands(bands)


def _check_unique(names: list[str], where: str) -> None:
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise EngineError(f"{where}: Duplicate band name '{n}'; band names must be unique.")
        seen.add(n)


@algorithm("Image.rename")
def image_rename(input: Image, names: list[str]) -> Image:
    """Rename every band; the number of names must equal the number of bands."""
    if isinstance(names, str):
        names = [names]
    if len(names) != len(input.bands):
        raise EngineError(
            f"Image.rename: The number of names ({len(names)}) must match the number of "
            f"bands ({len(input.bands)})."
        )
    _check_unique([str(n) for n in names], "Image.rename")
    return input.with_bands([b.renamed(str(n)) for b, n in zip(input.bands, names, strict=True)])


def _unique_name(name: str, taken: set[str]) -> str:
    if name not in taken:
        return name
    k = 1
    while f"{name}_{k}" in taken:
        k += 1
    return f"{name}_{k}"


@algorithm("Image.addBands")
def image_add_bands(
    dstImg: Image, srcImg: Image, names: list[str] | None = None, overwrite: bool = False
) -> Image:
    """Append bands of ``srcImg`` (all, or those ``names`` selects) to ``dstImg``.

    With ``overwrite`` a same-named band of ``dstImg`` is replaced; without it, a clashing
    band is renamed with a ``_1``, ``_2``... suffix, as Earth Engine does.
    """
    dst, src = as_image(dstImg), as_image(srcImg)
    new = select_bands(src, list(names)) if names is not None else list(src.bands)
    bands = list(dst.bands)
    for band in new:
        names_now = [b.name for b in bands]
        if band.name in names_now and overwrite:
            bands[names_now.index(band.name)] = band
        else:
            bands.append(band.renamed(_unique_name(band.name, set(names_now))))
    return dst.with_bands(bands)


@algorithm("Image.cat")
def image_cat(srcImg: Image | None = None, dstImg: Image | None = None) -> Image:
    """Concatenate two images' bands (the order Earth Engine's ``cat`` uses)."""
    return image_add_bands(as_image(dstImg), as_image(srcImg))


@algorithm("Image.bandNames")
def image_band_names(image: Image) -> list[str]:
    """Names of the bands."""
    return image.band_names


@algorithm("Image.bandTypes")
def image_band_types(image: Image) -> dict[str, Any]:
    """Band name to ``PixelType`` JSON."""
    return {b.name: pixel_type_info(b.dtype, b.value_range) for b in image.bands}


def cast_band(band: Band, dtype: np.dtype) -> Band:
    """A band converted to ``dtype`` (float to int truncates toward zero, with saturation)."""
    dtype = np.dtype(dtype)
    if band.dtype == dtype:
        return band

    def fn(px: Pixels) -> Pixels:
        vals, mask = px
        if dtype.kind in "iu" and vals.dtype.kind == "f":
            info = np.iinfo(dtype)
            vals = np.clip(np.trunc(np.nan_to_num(vals)), info.min, info.max)
        elif dtype.kind in "iu" and vals.dtype.kind in "iub":
            info = np.iinfo(dtype)
            vals = np.clip(vals, info.min, info.max)
        return vals.astype(dtype), mask

    return Band(band.name, dtype, FuncNode(fn, [band.node]), band.projection, band.dimensions)


_CASTS = {
    "uint8": np.uint8, "int8": np.int8, "uint16": np.uint16, "int16": np.int16,
    "uint32": np.uint32, "int32": np.int32, "int64": np.int64, "float": np.float32,
    "double": np.float64, "byte": np.uint8, "short": np.int16, "int": np.int32, "long": np.int64,
}  # fmt: skip


def _make_cast(dtype: type) -> Any:
    def cast(value: Any) -> Image:
        image = as_image(value)
        return image.with_bands([cast_band(b, np.dtype(dtype)) for b in image.bands])

    return cast


for _name, _dt in _CASTS.items():
    _title = _name[0].upper() + _name[1:]
    algorithm(f"Image.{_name}", f"Image.to{_title}")(_make_cast(_dt))


@algorithm("Image.cast")
def image_cast(image: Image, bandTypes: dict[str, Any], bandOrder: list[str] | None = None) -> Image:
    """Cast bands to the pixel types given by name."""
    bands = []
    for b in image.bands:
        bands.append(cast_band(b, dtype_from_ee(bandTypes[b.name])) if b.name in bandTypes else b)
    if bandOrder is not None:
        by_name = {b.name: b for b in bands}
        bands = [by_name[n] for n in bandOrder]
    return image.with_bands(bands)


@algorithm("Image.date")
def image_date(image: Image) -> Date:
    """The image's ``system:time_start`` as a Date."""
    start = image.get("system:time_start")
    if start is None:
        raise EngineError("Image.date: the image has no 'system:time_start' property.")
    return Date(float(start))


@algorithm("Image.projection")
def image_projection(image: Image) -> Projection:
    """The projection of the bands (they must share one)."""
    projs = {b.projection for b in image.bands}
    if len(projs) > 1:
        raise EngineError(
            "Image.projection: The bands of the specified image contains different "
            "projections. Use Image.select to pick a single band."
        )
    return image.default_projection


def _projection_from(crs: Any, crsTransform: Any, scale: float | None) -> Projection:
    proj = crs if isinstance(crs, Projection) else Projection(str(crs), parse_transform(crsTransform))
    if crsTransform is not None and isinstance(crs, Projection):
        proj = Projection(proj.crs, parse_transform(crsTransform))
    if scale is not None:
        proj = proj.at_scale(float(scale))
    return proj


@algorithm("Image.setDefaultProjection")
def image_set_default_projection(
    image: Image, crs: Any, crsTransform: list[float] | None = None, scale: float | None = None
) -> Image:
    """Set the projection metadata of every band (pixels are unchanged)."""
    proj = _projection_from(crs, crsTransform, scale)
    return image.with_bands(
        [Band(b.name, b.dtype, b.node, proj, None, b.value_range, b.rank) for b in image.bands]
    )


@algorithm("Image.reproject")
def image_reproject(
    image: Image, crs: Any, crsTransform: list[float] | None = None, scale: float | None = None
) -> Image:
    """Force computation in a projection; results are then resampled (nearest) to the request."""
    from gee_fusion.local.algorithms.image_mask import ReprojectNode

    proj = _projection_from(crs, crsTransform, scale)
    return image.with_bands(
        [Band(b.name, b.dtype, ReprojectNode(b.node, proj), proj, None, b.value_range) for b in image.bands]
    )


@algorithm("Image.resample")
def image_resample(image: Image, mode: str = "bilinear") -> Image:
    """Use bilinear or bicubic interpolation when asset bands are read in another grid."""
    if mode not in ("bilinear", "bicubic"):
        raise EngineError(f"Image.resample: mode must be 'bilinear' or 'bicubic', got {mode!r}.")
    bands = []
    for b in image.bands:
        node = b.node.with_resampling(mode) if isinstance(b.node, LeafNode) else b.node
        bands.append(Band(b.name, b.dtype, node, b.projection, b.dimensions, b.value_range, b.rank))
    return image.with_bands(bands)


@algorithm("Image.metadata")
def image_metadata(image: Image, property: str, name: str | None = None) -> Image:
    """A constant band holding a numeric property of the image (named after it, or ``name``)."""
    value = image.get(property)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise EngineError(f"Image.metadata: property '{property}' is not a number (got {value!r}).")
    return image.with_bands([constant_image(value).bands[0].renamed(name or property)], keep_properties=False)
