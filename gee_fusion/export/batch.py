"""Earth Engine batch exports of the same products: ``Export.image.toCloudStorage / toDrive /
toAsset`` tasks on the exact output grid, validated before they are started.

An interactive export (:mod:`gee_fusion.export.image_export`) brings the pixels here; a batch task
has Earth Engine write them to a bucket, a Drive folder or an asset, with no request limits and no
local disk. Both export the same image (same bands, masked pixels, type) on the same grid: the task
gives ``crs``, ``crsTransform`` and ``dimensions`` (earthengine-api folds them into an exact
rectangle of the grid), never ``scale``, so pixels line up with the interactive export's.

On the local engine ``Task.start()`` runs the export at once into the engine's exports folder
(:mod:`gee_fusion.local.tasks`), so a batch script is testable offline.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import ee
from pydantic import BaseModel, ConfigDict, Field, model_validator

from gee_fusion.errors import ConfigError, ExportError
from gee_fusion.grid import PixelGrid

Destination = Literal["cloud_storage", "drive", "asset"]
DEFAULT_SHARD = 256
"""Earth Engine's default ``shardSize`` (tile side, px, computed per worker)."""
_ASSET_ID = re.compile(
    r"^(projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/assets|users/[A-Za-z0-9_-]+)/[A-Za-z0-9_/-]+$"
)
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$")


class BatchConfig(BaseModel):
    """Where and how a batch task writes (the ``batch`` section of an export YAML)."""

    model_config = ConfigDict(extra="forbid")

    destination: Destination = "cloud_storage"
    bucket: str | None = Field(None, description="Cloud Storage bucket (destination cloud_storage).")
    folder: str | None = Field(None, description="Drive folder (destination drive).")
    asset_id: str | None = Field(None, description="projects/<p>/assets/... (destination asset).")
    prefix: str | None = Field(None, description="File name prefix (default: the export's name).")
    shard_size: int = Field(DEFAULT_SHARD, ge=16, le=4096)
    file_dimensions: int | None = Field(
        None, ge=16, description="Largest file side (px); a multiple of shard_size."
    )
    max_pixels: int | None = Field(None, ge=1, description="Default: the grid's pixel count.")
    cloud_optimized: bool = True
    no_data: float = Field(-9999.0, description="Value written for masked pixels.")
    priority: int | None = Field(None, ge=0, le=9999)

    @model_validator(mode="after")
    def _destination(self) -> BatchConfig:
        if self.destination == "cloud_storage" and not (self.bucket and _BUCKET.match(self.bucket)):
            raise ValueError(
                f"destination cloud_storage needs a bucket name (3-63 of a-z 0-9 . _ -), got {self.bucket!r}"
            )
        if self.destination == "asset" and not (self.asset_id and _ASSET_ID.match(self.asset_id)):
            raise ValueError(
                f"destination asset needs asset_id 'projects/<project>/assets/<name>' or 'users/<u>/<name>', "
                f"got {self.asset_id!r}"
            )
        if self.file_dimensions is not None and self.file_dimensions % self.shard_size:
            raise ValueError(
                f"file_dimensions {self.file_dimensions} must be a multiple of shard_size {self.shard_size} "
                f"(e.g. {self.shard_size * max(1, round(self.file_dimensions / self.shard_size))})"
            )
        return self


def image_task(image: ee.Image, grid: PixelGrid, *, name: str, batch: BatchConfig) -> ee.batch.Task:
    """An unstarted ``Export.image`` task writing ``image`` on exactly ``grid``.

    ``image`` is exported as it is: select bands, fill masked pixels and cast first
    (:func:`gee_fusion.export.image_export.prepared_image`).

    Raises:
        ConfigError: ``max_pixels`` is below the grid's pixel count (the task would fail on the
            server after queuing).
    """
    pixels = grid.width * grid.height
    max_pixels = batch.max_pixels or pixels
    if max_pixels < pixels:
        raise ConfigError(
            f"batch.max_pixels={max_pixels} is below the grid's {pixels} pixels "
            f"({grid.width} x {grid.height}): the task would fail with 'Export too large'. "
            "Raise max_pixels or leave it unset."
        )
    common: dict[str, Any] = {
        "description": name, "crs": grid.crs, "crsTransform": list(grid.transform),
        "dimensions": f"{grid.width}x{grid.height}", "maxPixels": max_pixels,
    }  # fmt: skip
    if batch.priority is not None:
        common["priority"] = batch.priority
    if batch.destination == "asset":
        return ee.batch.Export.image.toAsset(image, assetId=batch.asset_id, **common)
    files: dict[str, Any] = {
        "fileNamePrefix": batch.prefix or name, "shardSize": batch.shard_size, "fileFormat": "GeoTIFF",
        "formatOptions": {"cloudOptimized": batch.cloud_optimized, "noData": batch.no_data},
    }  # fmt: skip
    if batch.file_dimensions is not None:
        files["fileDimensions"] = batch.file_dimensions
    if batch.destination == "drive":
        return ee.batch.Export.image.toDrive(image, folder=batch.folder, **common, **files)
    return ee.batch.Export.image.toCloudStorage(image, bucket=batch.bucket, **common, **files)


def check_task_config(config: dict[str, Any], grid: PixelGrid) -> None:
    """Check a task's request before it is started, as Earth Engine would after queuing it.

    Raises:
        ExportError: the request misses its image or destination, allows fewer pixels than the
            grid has, or asks for files whose side is not a multiple of the shard size.
    """
    if not isinstance(config.get("expression"), ee.Image):
        raise ExportError("The task exports no image ('expression' is missing).")
    files = config.get("fileExportOptions")
    assets = config.get("assetExportOptions")
    if (files is None) == (assets is None):
        raise ExportError("The task needs exactly one destination (file or asset export options).")
    pixels = grid.width * grid.height
    allowed = int(config.get("maxPixels", {}).get("value", 100_000_000))
    if allowed < pixels:
        raise ExportError(
            f"Export too large: specified {pixels} pixels (max: {allowed}). Raise batch.max_pixels."
        )
    if files is not None:
        if not ({"cloudStorageDestination", "driveDestination"} & set(files)):
            raise ExportError("The task's file export names no bucket or Drive folder.")
        tiff = files.get("geoTiffOptions", {})
        dims, shard = tiff.get("tileDimensions"), tiff.get("tileSize", {}).get("value", DEFAULT_SHARD)
        if dims and (dims["width"] % shard or dims["height"] % shard):
            raise ExportError(f"fileDimensions {dims} must be multiples of shardSize {shard}.")


def start_task(task: ee.batch.Task, grid: PixelGrid) -> dict[str, Any]:
    """Check and start ``task``; returns its status (``id``, ``state``, ``destination_uris``...).

    On Earth Engine the task is queued (follow it with ``earthengine task info ID`` or the
    Code Editor's Tasks tab); on the local engine it has run when this returns.

    Raises:
        ExportError: the task's request is invalid, or the task failed (its server message).
    """
    check_task_config(task.config or {}, grid)
    task.start()
    status = dict(task.status())
    if status.get("state") == "FAILED":
        raise ExportError(f"Batch task {task.id} failed: {status.get('error_message', 'no message')}")
    return status
