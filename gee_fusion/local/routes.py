"""The routing table of the local engine: which ``ee.data`` functions it answers, and how.

:func:`gee_fusion.engine.connect` installs these functions on ``ee.data`` while the local engine
is connected and restores earthengine-api's own on ``disconnect``. Requests the local engine
cannot answer yet (thumbnails, downloads, table/video/map exports) raise
:class:`~gee_fusion.errors.NotSupportedError` naming the call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gee_fusion.errors import NotSupportedError
from gee_fusion.local.faults import FaultInjector

# ee.data functions replaced while the local engine is connected.
ROUTED = (
    "computeValue", "computePixels", "getMapId", "getTileUrl", "getThumbId", "getThumbnail",
    "getDownloadId", "getTableDownloadId", "getFeatureViewTilesKey", "exportImage",
    "exportTable", "exportVideo", "exportMap", "exportClassifier", "computeFeatures",
    "computeImages", "getPixels", "listAssets", "listImages", "getList", "getInfo", "getAsset",
    "getAlgorithms", "_install_cloud_api_resource", "startIngestion", "startTableIngestion",
    "createAsset", "deleteAsset", "getTaskList", "listOperations", "newTaskId", "getOperation",
    "cancelOperation", "getTaskStatus", "cancelTask",
)  # fmt: skip


def _not_supported(what: str) -> Callable[..., Any]:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise NotSupportedError(
            f"{what} is not supported by the local engine yet; run it on real Earth Engine "
            "(gee_fusion.connect('earthengine', project=...))."
        )

    return fail


def local_routes(faults: FaultInjector | None = None) -> dict[str, Callable[..., Any]]:
    from ee import apitestcase

    from gee_fusion.local import assets, server, tasks, tiles  # the engine itself loads on first connect

    routes: dict[str, Callable[..., Any]] = {name: _not_supported(f"ee.data.{name}") for name in ROUTED}
    routes.update(
        computeValue=server.compute_value,
        computePixels=server.compute_pixels,
        getAlgorithms=apitestcase.GetAlgorithms,
        _install_cloud_api_resource=lambda: None,
        listAssets=assets.list_assets,
        getList=assets.get_list,
        getInfo=assets.get_info,
        getAsset=assets.get_asset,
    )
    for name in ("getThumbId", "getThumbnail", "getFeatureViewTilesKey"):
        routes[name] = _not_supported(f"Thumbnails and feature views (ee.data.{name})")
    routes.update(
        getMapId=tiles.get_map_id,
        getTileUrl=lambda mapid, x, y, z: mapid["tile_fetcher"].format_tile_url(x, y, z),
    )
    for name in ("exportTable", "exportVideo", "exportMap", "exportClassifier"):
        routes[name] = _not_supported(f"Batch exports other than images (ee.data.{name})")
    routes.update(
        exportImage=tasks.export_image,
        newTaskId=tasks.new_task_id,
        getOperation=tasks.get_operation,
        listOperations=tasks.list_operations,
        getTaskStatus=tasks.get_task_status,
        cancelOperation=tasks.cancel_operation,
        getTaskList=lambda: [_task(op) for op in tasks.list_operations()],
        cancelTask=lambda task_id: tasks.cancel_operation(_operation_name(task_id)),
    )
    if faults is not None:
        for name in ("computeValue", "computePixels"):
            routes[name] = faults.wrap(name, routes[name])
    return routes


def _task(operation: dict[str, Any]) -> dict[str, Any]:
    from ee import _cloud_api_utils

    return _cloud_api_utils.convert_operation_to_task(operation)


def _operation_name(task_id: str) -> str:
    from gee_fusion.local import tasks

    for op in tasks.list_operations():
        if op["name"].rsplit("/", 1)[-1] == task_id:
            return str(op["name"])
    return f"projects/local/operations/{task_id}"
