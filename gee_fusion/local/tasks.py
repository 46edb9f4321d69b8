"""Batch export tasks run by the local engine: ``Export.image.*`` then ``Task.start()``.

earthengine-api builds an ``ExportImageRequest`` (the image with the grid folded in by
``Image.clipToBoundsAndScale``, the destination, the GeoTIFF options, ``maxPixels``) and sends it
with ``ee.data.exportImage``. The local engine answers that call by computing the image strip by
strip and writing GeoTIFFs the way the export would land:

* Cloud Storage ``bucket`` / ``fileNamePrefix`` -> ``EXPORTS/gcs/<bucket>/<prefix>.tif``;
* Drive ``folder`` / ``fileNamePrefix`` -> ``EXPORTS/drive/<folder>/<prefix>.tif``;
* an asset ``assetId`` -> ``EXPORTS/assets/<asset path>.tif``, registered in the local catalog so
  that ``ee.Image(assetId)`` reads it afterwards; like Earth Engine's assets they outlive the
  process: connecting registers every asset an earlier export left in ``EXPORTS/assets``
  (:func:`register_exported_assets`).

``EXPORTS`` is ``connect("local", exports_dir=...)``, else ``$GEE_FUSION_LOCAL_EXPORTS``, else
``./ee_exports``. An image larger than ``fileDimensions`` is split into several files named as
Earth Engine names them (``<prefix>-<row offset>-<column offset>.tif``, ten digits each).

Divergences from Earth Engine (also in ``docs/local_engine.md``): ``start()`` returns once the
files are written (Earth Engine queues the task and returns at once), so polling loops end at
their first ``status()``; a failed export is reported, as on Earth Engine, by the task's state
``FAILED`` and its ``error_message``, not by ``start()``.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine

from gee_fusion.errors import EngineError
from gee_fusion.grid import PixelGrid
from gee_fusion.io.stream_cog import StreamCOGWriter
from gee_fusion.local.catalog import CATALOG, register_geotiff_image
from gee_fusion.local.graph import evaluate
from gee_fusion.local.image import Image, PixelContext
from gee_fusion.local.server import encode

ENV_VAR = "GEE_FUSION_LOCAL_EXPORTS"
DEFAULT_MAX_PIXELS = 100_000_000
"""Earth Engine's default ``maxPixels`` for image exports."""
_STRIP_BYTES = 32 * 2**20
_OPERATION_TYPE = "type.googleapis.com/google.earthengine.v1alpha.OperationMetadata"


@dataclass
class _Settings:
    exports_dir: Path | None = None
    project: str = "local"


_settings = _Settings()
_operations: dict[str, dict[str, Any]] = {}
_lock = threading.Lock()


def set_exports_dir(path: str | Path | None, *, project: str | None = None) -> None:
    """Where exports land (``None``: ``$GEE_FUSION_LOCAL_EXPORTS``, else ``./ee_exports``), and
    the project that names the operations.

    Called by :func:`gee_fusion.engine.connect`.
    """
    _settings.exports_dir = None if path is None else Path(path)
    if project is not None:
        _settings.project = project
    register_exported_assets()


def register_exported_assets() -> list[str]:
    """Register the image assets earlier ``Export.image.toAsset`` tasks wrote into the exports
    folder (``EXPORTS/assets/<asset id>.tif``, band names from the file), as Earth Engine keeps
    assets between sessions; returns their IDs. Assets already registered are left alone."""
    root = exports_dir() / "assets"
    if not root.is_dir():
        return []
    found = []
    known = set(CATALOG.ids())
    for path in sorted(root.rglob("*.tif")):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts):  # a writer's temporary folder
            continue
        asset_id = relative.with_suffix("").as_posix()
        if asset_id not in known:
            register_geotiff_image(asset_id, path)
        found.append(asset_id)
    return found


def exports_dir() -> Path:
    """The folder that stands for Cloud Storage, Drive and the asset store."""
    if _settings.exports_dir is not None:
        return _settings.exports_dir
    return Path(os.environ.get(ENV_VAR) or "ee_exports")


def new_task_id(count: int = 1) -> list[str]:
    """``ee.data.newTaskId``: Earth Engine-like task ids."""
    return [uuid.uuid4().hex[:24].upper() for _ in range(count)]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def export_image(request_id: Any, params: dict[str, Any]) -> dict[str, Any]:
    """``ee.data.exportImage``: run the export now; return its (finished) operation."""
    task_id = request_id[0] if isinstance(request_id, list) else request_id
    task_id = str(task_id or new_task_id()[0])
    name = f"projects/{_settings.project}/operations/{task_id}"
    created = _now()
    meta: dict[str, Any] = {
        "@type": _OPERATION_TYPE, "state": "RUNNING", "description": params.get("description", ""),
        "priority": int(params.get("priority", {}).get("value", 100)), "createTime": created,
        "updateTime": created, "startTime": created, "type": "EXPORT_IMAGE", "attempt": 1,
    }  # fmt: skip
    operation: dict[str, Any] = {"name": name, "metadata": meta, "done": False}
    with _lock:
        _operations[name] = operation
    t0 = time.perf_counter()
    try:
        uris = _run_export(params)
    except Exception as exc:  # the task fails; Earth Engine reports it in the task's status
        meta["state"] = "FAILED"
        operation["error"] = {"code": 3, "message": str(exc)}
    else:
        meta.update(state="SUCCEEDED", destinationUris=uris, progress=1.0)
        operation["response"] = {"@type": "type.googleapis.com/google.protobuf.Empty"}
    meta["updateTime"] = meta["endTime"] = _now()
    meta["batchEecuUsageSeconds"] = round(time.perf_counter() - t0, 3)
    operation["done"] = True
    return dict(operation)


def get_operation(operation_name: str) -> dict[str, Any]:
    """``ee.data.getOperation``."""
    with _lock:
        operation = _operations.get(operation_name)
    if operation is None:
        raise EngineError(f"Operation {operation_name!r} not found in the local engine.")
    return dict(operation)


def list_operations(project: str | None = None) -> list[dict[str, Any]]:
    """``ee.data.listOperations``: the tasks started in this process, newest first."""
    with _lock:
        return [dict(op) for op in reversed(list(_operations.values()))]


def get_task_status(task_id: list[str] | str) -> list[dict[str, Any]]:
    """``ee.data.getTaskStatus``: legacy task dictionaries (``UNKNOWN`` for unknown ids)."""
    from ee import _cloud_api_utils

    ids = [task_id] if isinstance(task_id, str) else list(task_id)
    with _lock:
        by_id = {name.rsplit("/", 1)[-1]: op for name, op in _operations.items()}
    return [
        _cloud_api_utils.convert_operation_to_task(by_id[i]) if i in by_id else {"id": i, "state": "UNKNOWN"}
        for i in ids
    ]


def cancel_operation(operation_name: str) -> None:
    """``ee.data.cancelOperation``: local tasks are finished when ``start()`` returns."""
    get_operation(operation_name)


def _run_export(params: dict[str, Any]) -> list[str]:
    image = evaluate(encode(params["expression"]))
    if not isinstance(image, Image):
        raise EngineError(f"Export.image needs an Image, got {type(image).__name__}.")
    grid = image.native_grid()
    if grid is None:
        raise EngineError(
            "The export has no grid: give region and scale (or crs and crsTransform, or dimensions)."
        )
    max_pixels = int(params.get("maxPixels", {}).get("value", DEFAULT_MAX_PIXELS))
    pixels = grid.width * grid.height
    if pixels > max_pixels:  # Earth Engine's words
        raise EngineError(
            f"Export too large: specified {pixels} pixels (max: {max_pixels}). "
            "Specify higher maxPixels value if you intend to export a large area."
        )
    dtypes = {np.dtype(b.dtype) for b in image.bands}
    if len(dtypes) > 1:
        names = " and ".join(sorted(_ee_type(d) for d in dtypes))
        raise EngineError(
            f"Exported bands must have compatible data types; found inconsistent types: {names}."
        )
    if "assetExportOptions" in params:
        return [_to_asset(image, grid, params["assetExportOptions"])]
    options = params.get("fileExportOptions", {})
    if options.get("fileFormat", "GEO_TIFF") != "GEO_TIFF":
        raise EngineError(f"The local engine exports GeoTIFF only, not {options.get('fileFormat')}.")
    target = _file_destination(options)
    tiff = options.get("geoTiffOptions", {})
    nodata = tiff.get("noData", {}).get("floatValue")
    dims = tiff.get("tileDimensions")
    file_w, file_h = (dims["width"], dims["height"]) if dims else (grid.width, grid.height)
    uris = []
    for row, col, part in _file_parts(grid, file_w, file_h):
        path = (
            target.with_name(target.name + ".tif")
            if part is None
            else target.with_name(f"{target.name}-{row:010d}-{col:010d}.tif")
        )
        _write_tiff(image, part or grid, path, nodata=nodata)
        uris.append(path.resolve().as_uri())
    return uris


def _ee_type(dtype: np.dtype) -> str:
    return {"f": "Float", "i": "Int", "u": "UInt"}.get(dtype.kind, dtype.name) + str(8 * dtype.itemsize)


def _file_destination(options: dict[str, Any]) -> Path:
    if "cloudStorageDestination" in options:
        dest = options["cloudStorageDestination"]
        return exports_dir() / "gcs" / str(dest["bucket"]) / str(dest.get("filenamePrefix") or "export")
    if "driveDestination" in options:
        dest = options["driveDestination"]
        folder = exports_dir() / "drive" / str(dest.get("folder") or "")
        return folder / str(dest.get("filenamePrefix") or "export")
    raise EngineError("The export names no destination (Cloud Storage bucket or Drive folder).")


def _to_asset(image: Image, grid: PixelGrid, options: dict[str, Any]) -> str:
    dest = options.get("earthEngineDestination", {})
    name = str(dest.get("name", ""))
    asset_id = name.removeprefix("projects/earthengine-legacy/assets/")
    if not asset_id:
        raise EngineError("Export.image.toAsset needs an assetId.")
    path = exports_dir() / "assets" / f"{asset_id}.tif"
    if path.exists() and not dest.get("overwrite", False):
        raise EngineError(f"Cannot overwrite asset '{asset_id}'.")  # Earth Engine's words
    _write_tiff(image, grid, path, nodata=None)
    register_geotiff_image(asset_id, path, band_names=image.band_names, properties=image.properties)
    return path.resolve().as_uri()


def _file_parts(grid: PixelGrid, file_w: int, file_h: int) -> Iterator[tuple[int, int, PixelGrid | None]]:
    """The files of an export: one (``None``) if it fits ``fileDimensions``, else a grid each."""
    if grid.width <= file_w and grid.height <= file_h:
        yield 0, 0, None
        return
    for row in range(0, grid.height, file_h):
        for col in range(0, grid.width, file_w):
            width, height = min(file_w, grid.width - col), min(file_h, grid.height - row)
            yield row, col, grid.window(col, row, width, height)


def _write_tiff(image: Image, grid: PixelGrid, path: Path, *, nodata: float | None) -> None:
    """Compute ``image`` on ``grid`` in strips and stream it to a COG at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    dtype = np.dtype(image.bands[0].dtype)
    if dtype == np.bool_:
        dtype = np.dtype("uint8")
    fill = 0 if nodata is None else nodata
    ctx = PixelContext([b.node for b in image.bands])
    row_bytes = max(grid.width * len(image.bands) * dtype.itemsize, 1)
    strip = max(1, min(grid.height, _STRIP_BYTES // row_bytes))
    with StreamCOGWriter(
        path, width=grid.width, height=grid.height, count=len(image.bands), dtype=dtype.name, crs=grid.crs,
        transform=Affine(*grid.transform), nodata=nodata, band_names=image.band_names,
        overview_resampling="nearest" if dtype.kind in "iub" else "average",
    ) as writer:  # fmt: skip
        for row in range(0, grid.height, strip):
            part = grid.window(0, row, grid.width, min(strip, grid.height - row))
            block = np.empty((len(image.bands), part.height, part.width), dtype=dtype)
            for k, band in enumerate(image.bands):
                vals, mask = ctx.pixels(band.node, part)
                block[k] = np.where(mask, vals, fill)
            writer.write((slice(row, row + part.height), slice(0, grid.width)), block)
