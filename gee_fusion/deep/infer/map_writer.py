"""The output side of streamed inference: finished probability strips -> class codes -> COGs.

:class:`MapWriter` turns each :class:`ProbabilityStrip` into class codes (argmax through a code
table, nodata where the source marked pixels not valid), passes them through the optional
streamed small-object removal and writes them, with the optional probabilities, through
:class:`~gee_fusion.io.stream_cog.StreamCOGWriter` (published atomically when the run succeeds).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gee_fusion.deep.infer.raster_source import RasterSource
from gee_fusion.deep.infer.small_objects import StreamingSieve
from gee_fusion.errors import ConfigError
from gee_fusion.io.stream_cog import StreamCOGWriter


@dataclass(frozen=True)
class ProbabilityStrip:
    """Finished rows of the blended class probabilities.

    Attributes:
        row: First raster row of the strip.
        probabilities: (num_classes, rows, w) float32 tensor on the inference device.
        valid: (rows, w) bool, False where the source marked pixels as not wanted.
        col: Raster column of the strip's first column (0 for full-width strips).
        core: ``(start, stop)`` raster columns this strip's band writes; None: all its columns.
            Columns outside the core (the band's halo) are final too, for the sieve.
        band: Index of the column band (strips of one band come top to bottom, band after band).
    """

    row: int
    probabilities: torch.Tensor
    valid: np.ndarray
    col: int = 0
    core: tuple[int, int] | None = None
    band: int = 0

    @property
    def columns(self) -> tuple[int, int]:
        """Raster columns ``(start, stop)`` of the strip."""
        return self.col, self.col + int(self.probabilities.shape[2])

    @property
    def core_columns(self) -> tuple[tuple[int, int], slice]:
        """The raster columns ``(start, stop)`` to write, and where they lie in the strip."""
        core = self.core or self.columns
        return core, slice(core[0] - self.col, core[1] - self.col)


def code_table(num_classes: int, class_codes: Sequence[int] | None, nodata: int) -> np.ndarray:
    """The uint8 code written for each class index (default: the index itself).

    Raises:
        ConfigError: Wrong number of codes, codes outside 0..255, or a code equal to ``nodata``.
    """
    codes = np.arange(num_classes) if class_codes is None else np.asarray(list(class_codes))
    if codes.shape != (num_classes,):
        raise ConfigError(
            f"class_codes has {codes.size} codes for {num_classes} classes: give one per class."
        )
    if not 0 <= nodata <= 255:
        raise ConfigError(f"nodata={nodata}: the class map is uint8, use 0..255 (e.g. 255).")
    if codes.min() < 0 or codes.max() > 255 or (codes == nodata).any():
        raise ConfigError(f"class_codes {codes.tolist()} must be 0..255 and differ from nodata={nodata}.")
    return codes.astype(np.uint8)


def probabilities_path_for(out_path: str | Path) -> Path:
    """Where :func:`predict_raster` writes the probabilities: ``<stem>_probabilities.tif`` beside the map."""
    path = Path(out_path)
    return path.with_name(f"{path.stem}_probabilities{path.suffix or '.tif'}")


def map_tags(lut: np.ndarray, class_names: Mapping[int, str] | None) -> dict[str, str]:
    """GeoTIFF metadata of a class map: the written codes, and each code's class name
    (``CLASS_<code>=<name>`` and one JSON ``class_names`` mapping)."""
    tags = {"classes": str(lut.tolist())}
    if class_names:
        names = {int(code): str(name) for code, name in class_names.items()}
        tags["class_names"] = json.dumps(names, ensure_ascii=False)
        tags.update({f"CLASS_{code}": name for code, name in names.items()})
    return tags


class MapWriter:
    """Class codes (and optionally probabilities) of finished strips -> sieve -> COG writers.

    Writers are entered on ``stack``: they publish on a clean exit and discard everything on an error.
    """

    def __init__(
        self,
        stack: contextlib.ExitStack,
        source: RasterSource,
        out_path: str | Path,
        prob_path: Path | None,
        lut: np.ndarray,
        nodata: int,
        colormap: Mapping[int, Sequence[int]] | None,
        min_object_size: int,
        class_names: Mapping[int, str] | None = None,
    ) -> None:
        h, w = source.height, source.width
        self.width, self.nodata, self.lut = w, nodata, lut
        self.lut_t: torch.Tensor | None = None

        def writer(path: str | Path, **options: Any) -> StreamCOGWriter:
            return stack.enter_context(
                StreamCOGWriter(
                    path, width=w, height=h, crs=source.crs, transform=source.transform, **options
                )
            )

        self.writer = writer(
            out_path, dtype="uint8", nodata=nodata, colormap=colormap, tags=map_tags(lut, class_names)
        )
        self.prob_writer = None
        if prob_path is not None:
            self.prob_writer = writer(
                prob_path, count=len(lut), dtype="float32", nodata=float("nan"),
                band_names=[f"class_{int(c)}" for c in lut], overview_resampling="average",
            )  # fmt: skip
        self.height, self.min_object_size = h, min_object_size
        self.band: int | None = None
        self.sieve: StreamingSieve | None = None

    def _start_band(self, strip: ProbabilityStrip) -> None:
        self.band = strip.band
        if self.min_object_size > 1:
            start, stop = strip.columns
            self.sieve = StreamingSieve(
                self.height,
                stop - start,
                self.min_object_size,
                nodata=self.nodata,
                cut_left=start > 0,
                cut_right=stop < self.width,
            )

    def put(self, strip: ProbabilityStrip) -> None:
        """Write one finished strip (the sieve may hold it back until its halo has arrived)."""
        if self.lut_t is None:
            self.lut_t = torch.from_numpy(self.lut).to(strip.probabilities.device)
        if strip.band != self.band:
            self._start_band(strip)
        core, inside = strip.core_columns
        n = strip.probabilities.shape[1]
        # max(dim).indices: the first maximum, like argmax, but several times faster than argmax(dim=0) on CPU
        codes = self.lut_t[strip.probabilities.max(dim=0).indices].cpu().numpy()
        codes[~strip.valid] = self.nodata
        if self.prob_writer is not None:
            probs = strip.probabilities[:, :, inside].cpu().numpy()
            probs[:, ~strip.valid[:, inside]] = np.nan
            self.prob_writer.write((slice(strip.row, strip.row + n), slice(*core)), probs)
        pieces = [(strip.row, codes)] if self.sieve is None else self.sieve.push(strip.row, codes)
        for row, piece in pieces:
            self.writer.write((slice(row, row + piece.shape[0]), slice(*core)), piece[:, inside])

    def rows_held(self) -> int:
        """Upper bound of rows buffered by the sieve and the writers so far."""
        held = self.writer.max_pending_rows + (self.sieve.max_rows_held if self.sieve else 0)
        return held + (self.prob_writer.max_pending_rows if self.prob_writer is not None else 0)
