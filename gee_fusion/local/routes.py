"""The routing table of the local engine: which ``ee.data`` functions it answers, and how.

:func:`gee_fusion.engine.connect` installs these functions on ``ee.data`` while the local engine
is connected and restores earthengine-api's own on ``disconnect``. Requests the local engine
cannot answer yet (map tiles, thumbnails, downloads, batch exports) raise
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
    "createAsset", "deleteAsset", "getTaskList", "listOperations", "newTaskId",
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

    from gee_fusion.local import assets, server  # the engine itself loads on first connect

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
    for name in ("getMapId", "getTileUrl", "getThumbId", "getThumbnail", "getFeatureViewTilesKey"):
        routes[name] = _not_supported(f"Map tiles and thumbnails (ee.data.{name})")
    for name in (
        "exportImage",
        "exportTable",
        "exportVideo",
        "exportMap",
        "exportClassifier",
        "newTaskId",
        "getTaskList",
        "listOperations",
    ):
        routes[name] = _not_supported(f"Batch exports (ee.data.{name})")
    if faults is not None:
        for name in ("computeValue", "computePixels"):
            routes[name] = faults.wrap(name, routes[name])
    return routes
