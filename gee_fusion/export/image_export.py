"""Exporting an ``ee.Image`` over a grid: planned requests streamed to a Zarr store, then a COG,
with a manifest; resumable after a crash.

Tiles are fetched (:mod:`gee_fusion.export.requests`) and written one by one into a hidden staging
store beside the output (``.NAME.zarr.partial``); each written tile is appended to the store's
ledger. A rerun of the same export skips the tiles in the ledger, so a crash (``kill -9``) costs
at most the tiles that were in flight. A rerun with another image, grid, bands or type into the
same output is refused unless ``overwrite``, and so is a ``NAME.tif`` or ``NAME.zarr`` that no
export of this image wrote (the COG carries the export's fingerprint in a tag). When every tile is
in, the staging store becomes ``NAME.zarr`` (a rename), the COG ``NAME.tif`` is streamed from it
block by block, and ``NAME.manifest.json`` records the engine, versions, recipe, grid, AOI, tile
plan, requests, retries, bytes and wall time. Memory holds a few tiles in flight and one block of every band.

Masked pixels: NaN in float outputs (fetched as a sentinel value, since Earth Engine sends masked
pixels as 0), ``nodata`` in integer outputs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ee
import numpy as np
import rasterio
import zarr
from affine import Affine

from gee_fusion.engine import ensure_connected
from gee_fusion.errors import BatchSuggestedError, ConfigError, ExportError
from gee_fusion.export.plan import RequestPlan, Tile, plan_requests
from gee_fusion.export.requests import DEFAULT_WORKERS, FetchStats, RetryPolicy, TileFetcher, fetch_tiles
from gee_fusion.grid import REQUEST_BYTE_LIMIT, PixelGrid
from gee_fusion.io.atomic import atomic_path, output_folder
from gee_fusion.io.stream_cog import StreamCOGWriter

FORMAT = "gee_fusion.image_export/1"
FLOAT_FILL = float(np.finfo(np.float32).min)
"""What masked pixels are filled with on the server for float outputs (then NaN here)."""
_CASTS = {
    "uint8": "toUint8", "int8": "toInt8", "uint16": "toUint16", "int16": "toInt16",
    "uint32": "toUint32", "int32": "toInt32", "float32": "toFloat", "float64": "toDouble",
}  # fmt: skip
_CHUNK_BYTES = 4 * 2**20
_COG_BLOCK_BYTES = 16 * 2**20
_COG_CACHE_CAP = 256 * 2**20
_COG_TAG = "GEE_FUSION_EXPORT"
"""COG metadata tag holding the fingerprint of the export that wrote it."""


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_image` wrote and what it cost."""

    zarr: Path | None
    cog: Path | None
    manifest: Path
    plan: RequestPlan
    stats: FetchStats
    skipped_tiles: int
    seconds: float


def export_image(
    image: ee.Image,
    grid: PixelGrid,
    out_dir: str | Path,
    *,
    name: str,
    bands: Sequence[str] | None = None,
    dtype: str = "float32",
    nodata: int | None = None,
    formats: Sequence[str] = ("zarr", "cog"),
    block: int = 512,
    request_bytes: int = REQUEST_BYTE_LIMIT,
    workers: int = DEFAULT_WORKERS,
    policy: RetryPolicy | None = None,
    overwrite: bool = False,
    recipe: Mapping[str, Any] | None = None,
    colormap: Mapping[int, Sequence[int]] | None = None,
    max_bytes: int | None = None,
    progress: bool = True,
) -> ExportResult:
    """Export ``image`` over ``grid`` on the connected engine to ``out_dir/name.{zarr,tif}``.

    Args:
        image: The image (a time series as one multi-band image, e.g. ``collection.toBands()``).
        grid: The output grid (any size: requests are planned within Earth Engine's limits).
        out_dir: Output folder (created).
        name: Output name (letters, digits, ``._-``).
        bands: Bands to export, in order (default: all, one ``getInfo`` round trip).
        dtype: Output type; the image is cast to it on the server.
        nodata: Value of masked pixels for integer types (default 0); floats use NaN.
        formats: ``zarr`` and/or ``cog`` (the Zarr store is always built; without ``zarr`` it
            is removed once the COG is written).
        block: Block side (px) of the Zarr chunks and COG tiles; requests are block multiples.
        request_bytes: Largest response of one request (Earth Engine's limit by default; lower
            it to keep heavy recipes under the server's memory limit).
        workers: Requests in flight (1..40).
        policy: Retries and splits of failing requests.
        overwrite: Replace outputs (or a staging store) of another export.
        recipe: The settings that built ``image``, recorded in the manifest (and its hash).
        colormap: Colour table of a single-band integer class map (value -> RGBA) for the COG.
        max_bytes: Largest export (uncompressed bytes) to run interactively; a larger new export
            raises :class:`~gee_fusion.errors.BatchSuggestedError` before anything is fetched
            (a batch task suits it better: :mod:`gee_fusion.export.batch`). ``None``: no limit.
        progress: Progress bar on stderr.

    Raises:
        ConfigError: bad name, type, formats or block.
        OutputError: the output folder is a file, or cannot be created or written.
        ExportError: unknown bands, or outputs of another export (or files no export wrote, such as
            an existing ``NAME.tif``) without ``overwrite``.
        BatchSuggestedError: the export is larger than ``max_bytes``.
        TileFetchError: a tile could not be fetched after every retry and split (a rerun resumes).
    """
    start = time.perf_counter()
    out_dir = Path(out_dir)
    _check_options(name, dtype, formats, block, out_dir)
    connection = ensure_connected()
    names = export_bands(image, bands)
    itemsize = np.dtype(dtype).itemsize
    plan = plan_requests(grid, [itemsize] * len(names), block=(block, block), byte_limit=request_bytes)
    fill = FLOAT_FILL if np.dtype(dtype).kind == "f" else (0 if nodata is None else int(nodata))
    prepared = prepared_image(image, names, dtype, fill)
    fingerprint = _fingerprint(prepared, grid, names, dtype, fill, plan)
    final = out_dir / f"{name}.zarr"
    staging = out_dir / f".{name}.zarr.partial"
    manifest_path = out_dir / f"{name}.manifest.json"
    cog_path = out_dir / f"{name}.tif"
    if max_bytes is not None and plan.total_bytes > max_bytes and not (staging.exists() or final.exists()):
        raise BatchSuggestedError(
            f"The export {name!r} would bring {plan.total_bytes / 2**30:.1f} GiB in "
            f"{plan.requests} requests, over the interactive limit of {max_bytes / 2**30:.1f} GiB: "
            "run it as an Earth Engine batch task (gee-fusion export ... --batch), "
            "or raise the limit (interactive_max_gib).",
            total_bytes=plan.total_bytes,
            max_bytes=max_bytes,
        )
    previous = _previous_fingerprint(final, manifest_path)
    stored = final.exists() and previous == fingerprint
    if previous not in (None, fingerprint) and not overwrite:
        raise ExportError(
            f"{out_dir} already holds the export {name!r} of another image, grid, bands or type: choose "
            "another name or folder, or pass overwrite (--overwrite) to replace it."
        )
    if "cog" in formats and not overwrite and _foreign_cog(cog_path, manifest_path, fingerprint):
        raise ExportError(
            f"{cog_path} already exists and was not written by this export: pass overwrite (--overwrite) "
            "to replace it, or choose another name or folder."
        )
    stats, done = FetchStats(), set[int]()
    wanted = ([final] if "zarr" in formats else []) + ([cog_path] if "cog" in formats else [])
    if previous == fingerprint and manifest_path.exists() and all(p.exists() for p in wanted):
        return ExportResult(  # the same export, already complete: nothing to do
            final if "zarr" in formats else None, cog_path if "cog" in formats else None, manifest_path, plan,
            stats, plan.requests, time.perf_counter() - start,
        )  # fmt: skip
    if stored:
        done = {t.index for t in plan.tiles()}
    else:
        store, done = _open_staging(staging, grid, names, dtype, block, fingerprint, overwrite=overwrite)
        fetcher = TileFetcher(prepared, plan, names, policy=policy, stats=stats)
        todo = [t for t in plan.tiles() if t.index not in done]
        float_fill = fill if np.dtype(dtype).kind == "f" else None
        with _ledger(staging).open("a", encoding="utf-8") as ledger:
            for tile, arr in fetch_tiles(fetcher, todo, workers=workers, progress=progress, total=len(todo)):
                _write_tile(store, tile, arr, names, float_fill)
                ledger.write(f"{tile.index}\n")
                ledger.flush()
                os.fsync(ledger.fileno())
        _publish(staging, final)
    cog = None
    if "cog" in formats:
        _release_memory()  # the fetch stage's buffers, before GDAL's cache grows
        cog = _write_cog(final, cog_path, grid, names, dtype, nodata, colormap, fingerprint)
    manifest = {
        "format": FORMAT, "fingerprint": fingerprint, "engine": connection.engine,
        "project": connection.project, "versions": _versions(), "created": datetime.now(UTC).isoformat(),
        "recipe": dict(recipe) if recipe else None,
        "recipe_hash": _hash(json.dumps(recipe, sort_keys=True, default=str)) if recipe else None,
        "grid": {"crs": grid.crs, "transform": list(grid.transform), "width": grid.width,
                 "height": grid.height},
        "aoi": {"crs": grid.crs, "bounds": list(grid.bounds())},
        "bands": names, "dtype": dtype, "nodata": None if np.dtype(dtype).kind == "f" else fill,
        "plan": {"tile_height": plan.tile_height, "tile_width": plan.tile_width, "requests": plan.requests,
                 "min_requests": plan.min_requests, "band_groups": [list(g) for g in plan.band_groups],
                 "byte_limit": plan.byte_limit, "block": block},
        "fetch": {**stats.as_dict(), "skipped_tiles": len(done), "workers": workers},
        "outputs": {"zarr": final.name if "zarr" in formats else None, "cog": cog.name if cog else None},
        "seconds": round(time.perf_counter() - start, 3),
    }  # fmt: skip
    with atomic_path(manifest_path, suffix=".json") as tmp:
        tmp.write_text(json.dumps(manifest, indent=2))
    if "zarr" not in formats:
        shutil.rmtree(final)
    return ExportResult(
        final if "zarr" in formats else None, cog, manifest_path, plan, stats, len(done),
        time.perf_counter() - start,
    )  # fmt: skip


def _check_options(name: str, dtype: str, formats: Sequence[str], block: int, out_dir: Path) -> None:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise ConfigError(f"Export name {name!r}: use letters, digits and ._- (e.g. 'fusion20_2021').")
    if dtype not in _CASTS:
        raise ConfigError(f"dtype {dtype!r}: use one of {sorted(_CASTS)}.")
    if not formats or any(f not in ("zarr", "cog") for f in formats):
        raise ConfigError(f"formats {list(formats)}: use 'zarr' and/or 'cog'.")
    if block < 16 or block % 16:
        raise ConfigError(f"block={block}: use a multiple of 16 (e.g. 512).")
    output_folder(out_dir)


def prepared_image(image: ee.Image, names: Sequence[str], dtype: str, fill: float) -> ee.Image:
    """The bands to export, masked pixels set to ``fill`` and cast to ``dtype`` (server-side)."""
    if dtype not in _CASTS:
        raise ConfigError(f"dtype {dtype!r}: use one of {sorted(_CASTS)}.")
    return getattr(image.select(list(names)).unmask(fill, False), _CASTS[dtype])()


def export_bands(image: ee.Image, bands: Sequence[str] | None) -> list[str]:
    """The bands to export: ``bands`` checked against the image's (one ``getInfo``), or all.

    Raises:
        ExportError: the image has no bands, or ``bands`` names unknown or repeated bands.
    """
    have = [str(b) for b in (image.bandNames().getInfo() or [])]
    if not have:
        raise ExportError("The image has no bands (was its collection empty?): nothing to export.")
    if bands is None:
        return have
    unknown = [b for b in bands if b not in have]
    if unknown:  # Earth Engine's words, then what there is
        raise ExportError(
            f"Image.select: Pattern '{unknown[0]}' did not match any bands. Choose bands among {have}."
        )
    if len(set(bands)) != len(bands):
        raise ExportError(f"Bands {list(bands)} name a band more than once.")
    return list(bands)


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _fingerprint(
    image: ee.Image, grid: PixelGrid, names: list[str], dtype: str, fill: float, plan: RequestPlan
) -> str:
    graph = json.dumps(ee.serializer.encode(image, for_cloud_api=True), sort_keys=True)
    parts = [graph, grid.crs, repr(grid.transform), str(grid.width), str(grid.height), ",".join(names), dtype,
             repr(fill), f"{plan.tile_height}x{plan.tile_width}", repr(plan.band_groups)]  # fmt: skip
    return _hash("|".join(parts))


def _previous_fingerprint(final: Path, manifest: Path) -> str | None:
    """The fingerprint of what ``final`` (or, without it, the manifest) holds; None if neither
    exists, ``"unreadable"`` for a foreign or damaged one (another export)."""
    try:
        if final.exists():
            value = zarr.open_group(str(final), mode="r").attrs.get("fingerprint")
        elif manifest.exists():
            value = json.loads(manifest.read_text()).get("fingerprint")
        else:
            return None
    except Exception:  # zarr and json raise several unrelated types on foreign content
        return "unreadable"
    return str(value) if value else "unknown"


def _foreign_cog(cog: Path, manifest: Path, fingerprint: str) -> bool:
    """Whether ``cog`` exists but this export did not write it: neither its tag nor the manifest of
    this export (which lists the COG it wrote) vouches for it."""
    if not (cog.exists() or cog.is_symlink()):
        return False
    try:
        with rasterio.open(cog) as src:
            if src.tags().get(_COG_TAG) == fingerprint:
                return False
    except (rasterio.errors.RasterioError, OSError):
        pass  # not a raster: someone else's file
    try:
        record = json.loads(manifest.read_text())
        return not (record["fingerprint"] == fingerprint and record["outputs"]["cog"] == cog.name)
    except (OSError, ValueError, KeyError, TypeError):
        return True


def _open_staging(
    staging: Path,
    grid: PixelGrid,
    names: list[str],
    dtype: str,
    block: int,
    fingerprint: str,
    *,
    overwrite: bool,
) -> tuple[Any, set[int]]:
    """The staging store and the tiles already in it (a resumed export), or a new store."""
    if staging.exists():
        try:
            group = zarr.open_group(str(staging), mode="r+")
            same = group.attrs.get("fingerprint") == fingerprint
        except Exception as exc:  # zarr raises several unrelated types for a foreign folder
            if not overwrite:
                raise ExportError(
                    f"{staging} is not a readable export staging store ({exc}): remove it or pass overwrite."
                ) from exc
            same = False
        if same:
            ledger = _ledger(staging)
            done = {int(x) for x in ledger.read_text().split()} if ledger.exists() else set()
            return group["data"], done
        if not overwrite:
            raise ExportError(
                f"{staging} holds an unfinished export of another image, grid, bands or type: pass overwrite "
                "(--overwrite) to discard it, or rerun that export to finish it."
            )
        shutil.rmtree(staging)
    group = zarr.open_group(str(staging), mode="w")
    band_chunk = max(1, min(len(names), _CHUNK_BYTES // (block * block * np.dtype(dtype).itemsize)))
    fill = np.nan if np.dtype(dtype).kind == "f" else 0
    data = group.create_array(
        "data", shape=(len(names), grid.height, grid.width), chunks=(band_chunk, block, block), dtype=dtype,
        fill_value=fill, dimension_names=("band", "y", "x"),
    )  # fmt: skip
    a = Affine(*grid.transform)
    band = group.create_array("band", shape=(len(names),), dtype=str, dimension_names=("band",))
    band[:] = np.array(names, dtype=str)
    group.create_array("x", data=(a.c + a.a * (np.arange(grid.width) + 0.5)), dimension_names=("x",))
    group.create_array("y", data=(a.f + a.e * (np.arange(grid.height) + 0.5)), dimension_names=("y",))
    group.attrs.update(
        {"fingerprint": fingerprint, "crs": grid.crs, "transform": list(grid.transform), "format": FORMAT}
    )
    _ledger(staging).write_text("")
    return data, set()


def _ledger(staging: Path) -> Path:
    """The list of tiles written to a staging store, one index a line (beside the store)."""
    return staging.with_name(staging.name + ".ledger")


def _publish(staging: Path, final: Path) -> None:
    """Consolidate the finished staging store's metadata, rename it to ``final``, drop its ledger."""
    with warnings.catch_warnings():  # zarr notes that consolidation is not in the v3 spec; xarray reads it
        warnings.simplefilter("ignore", UserWarning)
        zarr.consolidate_metadata(str(staging))
    if final.is_dir() and not final.is_symlink():
        shutil.rmtree(final)
    elif final.exists() or final.is_symlink():
        final.unlink()
    os.replace(staging, final)
    _ledger(staging).unlink(missing_ok=True)


def _write_tile(data: Any, tile: Tile, arr: np.ndarray, names: list[str], float_fill: float | None) -> None:
    block = np.stack([arr[n] for n in names[tile.band_start : tile.band_stop]]).astype(data.dtype, copy=False)
    if float_fill is not None:
        block = np.where(block == np.asarray(float_fill, dtype=block.dtype), np.nan, block)
    rows, cols = tile.window
    data[tile.band_start : tile.band_stop, rows, cols] = block


def _write_cog(
    store: Path, path: Path, grid: PixelGrid, names: list[str], dtype: str, nodata: int | None,
    colormap: Mapping[int, Sequence[int]] | None, fingerprint: str,
) -> Path:  # fmt: skip
    data: Any = zarr.open_group(str(store), mode="r")["data"]
    block = int(data.chunks[1])
    kind = np.dtype(dtype).kind
    # GDAL's COG driver holds pixel-interleaved blocks of every band, and converts (and builds
    # overviews) a few rows of blocks at a time: with a block cache under ~4 rows it re-reads and
    # re-decompresses blocks. Tiles (>= 128 px, GDAL's minimum, nesting in the Zarr blocks) are
    # chosen so that one block stays near 16 MiB and 4 rows of blocks fit a 256 MiB cache
    # (measured, 20 float32 bands of 6000 x 6000 px: 26 s and no rise of the peak memory, against
    # 40 s and +450 MiB with 512 px tiles and a 512 MiB cache).
    pixel_bytes = len(names) * np.dtype(dtype).itemsize
    tile = max(min(block, 512), 128)

    def rows_bytes(side: int) -> int:
        return 4 * -(-grid.width // side) * side * side * pixel_bytes

    while tile > 128 and (tile * tile * pixel_bytes > _COG_BLOCK_BYTES or rows_bytes(tile) > _COG_CACHE_CAP):
        tile //= 2
    cache_mb = int(min(_COG_CACHE_CAP, max(64 * 2**20, rows_bytes(tile))) / 2**20)
    with StreamCOGWriter(
        path, width=grid.width, height=grid.height, count=len(names), dtype=dtype, crs=grid.crs,
        transform=Affine(*grid.transform), nodata=float("nan") if kind == "f" else (nodata or 0),
        band_names=names, colormap=colormap, blocksize=tile, tags={_COG_TAG: fingerprint},
        overview_resampling="average" if kind == "f" else "nearest", cache_mb=cache_mb,
        staging_compress="NONE",
    ) as writer:  # fmt: skip
        for row in range(0, grid.height, block):
            for col in range(0, grid.width, block):
                rows, cols = (
                    slice(row, min(row + block, grid.height)),
                    slice(col, min(col + block, grid.width)),
                )
                writer.write((rows, cols), np.asarray(data[:, rows, cols]))
    return path


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for package in ("gee-fusion", "earthengine-api", "numpy", "zarr", "rasterio"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "unknown"
    return out


def _release_memory() -> None:
    """Collect garbage and hand freed heap pages back to the system (glibc only; a no-op elsewhere),
    so the COG stage's GDAL cache does not stack on the fetch stage's peak."""
    import ctypes
    import gc

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
