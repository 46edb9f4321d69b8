"""Asset metadata calls answered from the local catalog (``ee.data.listAssets``, ``getInfo``)."""

from __future__ import annotations

from typing import Any

import ee

from gee_fusion.local.catalog import CATALOG, CollectionEntry
from gee_fusion.local.values import FeatureCollection


def _kind(asset_id: str) -> str:
    entry = CATALOG.entry(asset_id)
    if isinstance(entry, FeatureCollection):
        return "TABLE"
    return "IMAGE_COLLECTION" if isinstance(entry, CollectionEntry) else "IMAGE"


def get_asset(asset_id: str) -> dict[str, Any]:
    """Asset metadata in the Cloud API's shape (``type``, ``id``, ``name``)."""
    return {"type": _kind(asset_id), "id": asset_id, "name": f"projects/local/assets/{asset_id}"}


def get_info(asset_id: str) -> dict[str, Any] | None:
    """Like ``ee.data.getInfo``: metadata of an asset, or None if it does not exist."""
    if asset_id not in CATALOG.ids():
        return None
    return get_asset(asset_id)


def list_assets(params: dict[str, Any] | str) -> dict[str, list[dict[str, Any]]]:
    """Children of a catalog folder or the images of a collection."""
    parent = params if isinstance(params, str) else str(params.get("parent", ""))
    parent = parent.strip("/")
    ids = CATALOG.ids()
    if parent in ids and _kind(parent) == "IMAGE_COLLECTION":
        coll = CATALOG.load_collection(parent)
        return {"assets": [{"type": "IMAGE", "id": img.id} for img in coll.elements]}
    children = sorted({i for i in ids if i.startswith(parent + "/")})
    if not children:
        raise ee.EEException(f"Asset '{parent}' not found in the local catalog.")
    return {"assets": [{"type": _kind(i), "id": i} for i in children]}


def get_list(params: dict[str, Any]) -> list[dict[str, Any]]:
    """The legacy ``ee.data.getList``."""
    return list_assets({"parent": params.get("id", "")})["assets"]
