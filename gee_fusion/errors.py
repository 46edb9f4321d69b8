"""The one exception hierarchy of gee_fusion.

Every error raised on purpose by the toolkit derives from :class:`GeeFusionError`.
Errors raised while the local engine answers an Earth Engine request also derive from
``ee.EEException``, so code written for real Earth Engine (which catches
``ee.EEException``) behaves the same on both engines.
"""

from __future__ import annotations

import ee


class GeeFusionError(Exception):
    """Base class of every error raised by gee_fusion."""


class ConfigError(GeeFusionError, ValueError):
    """A configuration value or option is invalid; the message names it and the valid range."""


class CredentialsError(GeeFusionError):
    """Real Earth Engine was requested but no usable credentials were found."""


class EngineStateError(GeeFusionError):
    """An engine operation was attempted in the wrong state (e.g. before ``connect``)."""


class EngineError(GeeFusionError, ee.EEException):
    """An Earth Engine request failed while being answered by the local engine."""


class NotSupportedError(EngineError):
    """The local engine does not support this request kind yet (map tiles, exports, ...)."""


class AlgorithmNotImplementedError(EngineError):
    """The expression graph calls an Earth Engine algorithm the local engine lacks."""


class UnknownAssetError(EngineError):
    """A collection or image ID is not in the local catalog."""


class BandNotFoundError(EngineError):
    """A band selector matched no band (Earth Engine's own message is used)."""


class GridError(EngineError):
    """A requested pixel grid is invalid (non-positive size, over 32768 px a side, ...)."""


class GraphError(EngineError):
    """The serialized expression graph is malformed."""


class OutputError(GeeFusionError):
    """An output could not be written; nothing half-written is left behind."""


class DataError(GeeFusionError, ValueError):
    """Input data does not match what was expected (bands, shapes, splits); the message says what differs."""


class CheckpointError(GeeFusionError):
    """A checkpoint cannot be used here (other model, other class table, unreadable file)."""


class InferenceError(GeeFusionError):
    """Tiled inference cannot run as configured (e.g. tiles would leave pixels uncovered)."""


class ExportError(GeeFusionError):
    """An export cannot run as asked (request plan, output, resume mismatch); the message says what to do."""


class BatchSuggestedError(ExportError):
    """An interactive export would exceed its configured size: run it as a batch task instead.

    Attributes:
        total_bytes: Uncompressed bytes the export would bring.
        max_bytes: The interactive limit it exceeds.
    """

    def __init__(self, message: str, *, total_bytes: int, max_bytes: int) -> None:
        super().__init__(message)
        self.total_bytes = total_bytes
        self.max_bytes = max_bytes


class TileFetchError(ExportError):
    """A tile of an export could not be fetched after every retry and split; names the tile and the
    last server message."""
