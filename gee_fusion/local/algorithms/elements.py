"""Control flow (``If``), ``ObjectType``, and the property algorithms of elements
(``Element.*``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gee_fusion.errors import EngineError
from gee_fusion.local.image import Image
from gee_fusion.local.registry import algorithm
from gee_fusion.local.values import (
    Date,
    Feature,
    FeatureCollection,
    Geometry,
    ImageCollection,
)

# -- Control flow and types -----------------------------------------------------------------


@algorithm("If", lazy=("condition", "trueCase", "falseCase"))
def algorithms_if(condition: Callable[[], Any] | None = None, trueCase: Callable[[], Any] | None = None,
                  falseCase: Callable[[], Any] | None = None) -> Any:  # fmt: skip
    """Evaluate only the branch the condition selects.

    As in Earth Engine, null, false, 0, NaN and empty strings, lists and dictionaries are false.
    """
    cond = condition() if condition is not None else None
    if isinstance(cond, (bool, int, float, np.number)):
        truthy = bool(cond) and not np.isnan(float(cond))
    elif isinstance(cond, (str, list, dict)):
        truthy = len(cond) > 0
    else:
        truthy = cond is not None
    branch = trueCase if truthy else falseCase
    return branch() if branch is not None else None


@algorithm("ObjectType")
def object_type(value: Any = None) -> str:
    """Earth Engine's type name of a value."""
    return type_name(value)


def type_name(value: Any) -> str:
    """Earth Engine's type name of a local-engine value."""
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, (int, float)):
        return "Number"
    names = {str: "String", list: "List", dict: "Dictionary", Image: "Image",
             ImageCollection: "ImageCollection", Feature: "Feature",
             FeatureCollection: "FeatureCollection", Geometry: "Geometry", Date: "Date"}  # fmt: skip
    for cls, name in names.items():
        if isinstance(value, cls):
            return name
    return type(value).__name__


@algorithm("IsEqual")
def is_equal(left: Any = None, right: Any = None) -> bool:
    """Deep equality."""
    return bool(left == right)


# -- Element properties ---------------------------------------------------------------------


def _props(element: Any) -> dict[str, Any]:
    if not hasattr(element, "properties"):
        raise EngineError(f"Expected an element (Image, Feature, collection), got {type(element).__name__}.")
    return dict(element.properties)


@algorithm("Element.get")
def element_get(object: Any, property: str) -> Any:
    """A property value (null if absent)."""
    return object.get(property)


for _n in ("getNumber", "getString", "getArray"):
    algorithm(f"Element.{_n}")(element_get)


@algorithm("Element.set")
def element_set(object: Any, key: str, value: Any = None) -> Any:
    """A copy with one property set."""
    return object.with_properties({**_props(object), key: value})


@algorithm("Element.setMulti")
def element_set_multi(object: Any, properties: dict[str, Any]) -> Any:
    """A copy with several properties set."""
    return object.with_properties({**_props(object), **properties})


@algorithm("Element.propertyNames")
def element_property_names(element: Any) -> list[str]:
    """Names of the properties (with ``system:index`` etc.)."""
    return list(_props(element))


@algorithm("Element.toDictionary")
def element_to_dictionary(element: Any, properties: list[str] | None = None) -> dict[str, Any]:
    """Properties as a dictionary; without a list, the non-system ones."""
    props = _props(element)
    if properties is None:
        return {k: v for k, v in props.items() if not k.startswith("system:")}
    return {k: props[k] for k in properties if k in props}


@algorithm("Element.copyProperties", "Image.copyProperties")
def element_copy_properties(destination: Any = None, source: Any = None, properties: list[str] | None = None,
                            exclude: list[str] | None = None) -> Any:  # fmt: skip
    """Copy properties of ``source`` onto ``destination`` (all non-system ones by default)."""
    src = _props(source)
    if properties is not None:
        picked = {k: src[k] for k in properties if k in src}
    else:
        picked = {k: v for k, v in src.items() if not k.startswith("system:")}
    for k in exclude or []:
        picked.pop(k, None)
    return destination.with_properties({**_props(destination), **picked})


@algorithm("Element.replaceProperties")
def element_replace_properties(destination: Any, source: Any = None) -> Any:
    """Replace every property of ``destination`` by those of ``source``."""
    return destination.with_properties(_props(source) if source is not None else {})


@algorithm("Image.id", "Feature.id")
def element_id(element: Any) -> str | None:
    """The element's ``system:id`` (an image's asset ID, a feature's ID), null when it has none."""
    return element.id
