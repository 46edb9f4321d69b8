"""The local catalog: Earth Engine asset IDs mapped to file-backed or generated sources.

Entries are registered as loaders and built on first use, so importing the catalog is cheap
and a missing optional data folder only matters to the code that asks for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine

from gee_fusion import ids
from gee_fusion.errors import UnknownAssetError
from gee_fusion.local.image import Image
from gee_fusion.local.sources import GeoTiffSource, ImageSource, NumpySource, ZarrSource
from gee_fusion.local.values import FeatureCollection, Geometry, ImageCollection


@dataclass(frozen=True)
class CollectionEntry:
    """A registered collection: its images (with their index) and collection properties."""

    images: tuple[tuple[str, ImageSource], ...]
    properties: Mapping[str, Any]


Entry = CollectionEntry | ImageSource | FeatureCollection
Loader = Callable[[], Entry]


REAL_SAMPLE_IDS = frozenset(
    {ids.SLOVENIA_NDVI, ids.SLOVENIA_LULC, ids.BIGEARTHNET_S1, ids.BIGEARTHNET_S2, ids.BERLIN_S2_L1C}
)
"""IDs of the real samples (:mod:`gee_fusion.local.samples`), present only when their folder is."""


class Catalog:
    """Asset registry of the local engine (thread-safe)."""

    def __init__(self) -> None:
        self._loaders: dict[str, Loader] = {}
        self._built: dict[str, Entry] = {}
        self._values: dict[str, ImageCollection] = {}
        self._lock = threading.Lock()

    def register(self, asset_id: str, loader: Loader, *, replace: bool = True) -> None:
        """Register a loader that builds a collection entry or an image source on first use."""
        with self._lock:
            if not replace and asset_id in self._loaders:
                return
            self._loaders[asset_id] = loader
            self._built.pop(asset_id, None)
            self._values.pop(asset_id, None)

    def unregister(self, asset_id: str) -> None:
        """Remove an asset (no error if absent)."""
        with self._lock:
            self._loaders.pop(asset_id, None)
            self._built.pop(asset_id, None)
            self._values.pop(asset_id, None)

    def ids(self) -> list[str]:
        """Sorted IDs of every registered asset."""
        return sorted(self._loaders)

    def entry(self, asset_id: str) -> Entry:
        """The built entry of an asset (built on first use); an error listing the IDs if absent."""
        with self._lock:
            hit = self._built.get(asset_id)
            loader = self._loaders.get(asset_id)
        if hit is not None:
            return hit
        if loader is None:
            listed = ", ".join(self.ids()) or "(none)"
            hint = ""
            if asset_id in REAL_SAMPLE_IDS:
                hint = (
                    " It is one of the real samples, registered only when their folder is found: set "
                    "GEE_FUSION_REAL_DATA to the folder holding them (see the README's Data section) and "
                    "connect again, or use the demo world's collections (e.g. COPERNICUS/S2_SR_HARMONIZED)."
                )
            raise UnknownAssetError(
                f"Image asset or collection '{asset_id}' not found in the local catalog.{hint} "
                f"Registered IDs: {listed}. Register your own with "
                "gee_fusion.local.catalog.register_numpy_collection / register_geotiff_image."
            )
        built = loader()
        with self._lock:
            self._built[asset_id] = built
        return built

    def load_collection(self, asset_id: str) -> ImageCollection:
        """The ImageCollection value of a registered collection (built once, then shared:
        values are immutable)."""
        hit = self._values.get(asset_id)
        if hit is not None:
            return hit
        entry = self.entry(asset_id)
        if isinstance(entry, ImageSource):
            raise UnknownAssetError(
                f"'{asset_id}' is an image, not an image collection: use ee.Image('{asset_id}')."
            )
        if isinstance(entry, FeatureCollection):
            raise UnknownAssetError(
                f"'{asset_id}' is a table, not an image collection: use ee.FeatureCollection('{asset_id}')."
            )
        images = tuple(_image_of(f"{asset_id}/{idx}", idx, src) for idx, src in entry.images)
        value = ImageCollection(images, dict(entry.properties), asset_id)
        with self._lock:
            self._values[asset_id] = value
        return value

    def load_table(self, asset_id: str) -> FeatureCollection:
        """The FeatureCollection value of a registered table."""
        entry = self.entry(asset_id)
        if not isinstance(entry, FeatureCollection):
            call = "Image" if isinstance(entry, ImageSource) else "ImageCollection"
            raise UnknownAssetError(f"'{asset_id}' is not a table: use ee.{call}('{asset_id}').")
        return entry

    def load_image(self, asset_id: str) -> Image:
        """The Image value of a registered image, or of one image of a collection by its ID."""
        if asset_id in self._loaders:
            entry = self.entry(asset_id)
            if isinstance(entry, ImageSource):
                return _image_of(asset_id, asset_id.rsplit("/", 1)[-1], entry)
            kind = "a table" if isinstance(entry, FeatureCollection) else "an image collection"
            call = "FeatureCollection" if isinstance(entry, FeatureCollection) else "ImageCollection"
            raise UnknownAssetError(f"'{asset_id}' is {kind}: use ee.{call}('{asset_id}').")
        parent, _, idx = asset_id.rpartition("/")
        if parent in self._loaders:
            entry = self.entry(parent)
            if isinstance(entry, CollectionEntry):
                for index, src in entry.images:
                    if index == idx:
                        return _image_of(asset_id, idx, src)
        self.entry(asset_id)  # raises the listing error
        raise UnknownAssetError(f"Image '{asset_id}' not found.")  # pragma: no cover


def _image_of(image_id: str, index: str, src: ImageSource) -> Image:
    props: dict[str, Any] = {"system:index": index}
    props["system:footprint"] = Geometry(_ring(src.footprint()))
    return src.to_image(image_id, properties={**props, **src.properties})


def _ring(coords: list[list[float]]) -> Any:
    import shapely

    return shapely.LinearRing(coords)


CATALOG = Catalog()
"""The process-wide local catalog used by the local engine."""


def millis(when: datetime | str | np.datetime64 | int | float) -> int:
    """Milliseconds since the epoch (UTC) of a timestamp; naive datetimes are taken as UTC."""
    if isinstance(when, (int, float)):
        return int(when)
    if isinstance(when, np.datetime64):
        return int(when.astype("datetime64[ms]").astype(np.int64))
    if isinstance(when, str):
        when = datetime.fromisoformat(when)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return round(when.timestamp() * 1000)


def register_numpy_collection(
    asset_id: str,
    bands: Mapping[str, np.ndarray],
    *,
    crs: str,
    transform: Affine | Sequence[float],
    times: Sequence[datetime | str | np.datetime64 | int],
    masks: Mapping[str, np.ndarray] | None = None,
    properties: Sequence[Mapping[str, Any]] | None = None,
    collection_properties: Mapping[str, Any] | None = None,
    index_format: str = "%Y%m%dT%H%M%S",
    catalog: Catalog = CATALOG,
) -> None:
    """Register a time series of numpy arrays as an image collection.

    Args:
        asset_id: The collection ID, e.g. ``"users/me/my_series"``.
        bands: Band name to a (time, height, width) array (memory maps work).
        crs: CRS code of the native grid, e.g. ``"EPSG:32633"``.
        transform: Affine pixel-to-CRS transform of the native grid.
        times: One acquisition time per image.
        masks: Band name to a boolean (time, height, width) validity mask.
        properties: One property dictionary per image.
        collection_properties: Properties of the collection itself.
        index_format: strftime format of each image's ``system:index``.
        catalog: The catalog to register into.
    """
    n = len(times)
    for name, arr in bands.items():
        if np.ndim(arr) != 3 or np.shape(arr)[0] != n:
            raise UnknownAssetError(
                f"Band {name!r} must be a (time, height, width) array with {n} images, "
                f"got shape {np.shape(arr)}."
            )
    if properties is not None and len(properties) != n:
        raise UnknownAssetError(f"{len(properties)} property dictionaries for {n} images.")

    def load() -> CollectionEntry:
        images = []
        seen: dict[str, int] = {}
        for i, when in enumerate(times):
            ms = millis(when)
            index = datetime.fromtimestamp(ms / 1000, tz=UTC).strftime(index_format)
            if index in seen:
                seen[index] += 1
                index = f"{index}_{seen[index]}"
            else:
                seen[index] = 0
            props = {"system:time_start": ms, **(dict(properties[i]) if properties else {})}
            src = NumpySource(
                {k: v[i] for k, v in bands.items()}, crs=crs, transform=transform,
                masks={k: v[i] for k, v in masks.items()} if masks else None, properties=props,
            )  # fmt: skip
            images.append((index, src))
        return CollectionEntry(tuple(images), dict(collection_properties or {}))

    catalog.register(asset_id, load)


def register_numpy_image(
    asset_id: str,
    bands: Mapping[str, np.ndarray],
    *,
    crs: str,
    transform: Affine | Sequence[float],
    masks: Mapping[str, np.ndarray] | None = None,
    properties: Mapping[str, Any] | None = None,
    catalog: Catalog = CATALOG,
) -> None:
    """Register 2-D numpy arrays (one per band) as an image asset."""
    catalog.register(
        asset_id,
        lambda: NumpySource(bands, crs=crs, transform=transform, masks=masks, properties=properties),
    )


def register_geotiff_image(
    asset_id: str,
    path: str | Path,
    *,
    band_names: Sequence[str] | None = None,
    properties: Mapping[str, Any] | None = None,
    catalog: Catalog = CATALOG,
) -> None:
    """Register a GeoTIFF / COG file as an image asset (read by window on demand)."""
    catalog.register(asset_id, lambda: GeoTiffSource(path, band_names=band_names, properties=properties))


def register_geotiff_collection(
    asset_id: str,
    paths: Sequence[str | Path],
    *,
    times: Sequence[datetime | str | np.datetime64 | int],
    band_names: Sequence[str] | None = None,
    properties: Sequence[Mapping[str, Any]] | None = None,
    catalog: Catalog = CATALOG,
) -> None:
    """Register one GeoTIFF per acquisition as an image collection."""
    if len(paths) != len(times):
        raise UnknownAssetError(f"{len(paths)} files for {len(times)} acquisition times.")

    def load() -> CollectionEntry:
        images = []
        for i, (path, when) in enumerate(zip(paths, times, strict=True)):
            props = {"system:time_start": millis(when), **(dict(properties[i]) if properties else {})}
            images.append((Path(path).stem, GeoTiffSource(path, band_names=band_names, properties=props)))
        return CollectionEntry(tuple(images), {})

    catalog.register(asset_id, load)


def register_zarr_collection(
    asset_id: str,
    store: str | Path,
    *,
    bands: Sequence[str],
    crs: str,
    transform: Affine | Sequence[float],
    times: Sequence[datetime | str | np.datetime64 | int],
    nodata: float | None = None,
    catalog: Catalog = CATALOG,
) -> None:
    """Register (time, y, x) arrays of a Zarr group, one per band, as an image collection."""

    def load() -> CollectionEntry:
        import zarr

        group = zarr.open_group(str(store), mode="r")
        arrays = {b: group[b] for b in bands}
        images = []
        for i, when in enumerate(times):
            ms = millis(when)
            index = datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y%m%dT%H%M%S")
            src = ZarrSource(
                arrays, crs=crs, transform=transform, index=i, nodata=nodata,
                properties={"system:time_start": ms},
            )  # fmt: skip
            images.append((index, src))
        return CollectionEntry(tuple(images), {})

    catalog.register(asset_id, load)
