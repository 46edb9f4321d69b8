"""A raster source that runs the recipe lazily: the checkpoint's monthly stacks are brought
through xee one strip of rows at a time and scaled with the training statistics, so mapping a
city holds one strip of inputs in memory, never the whole area."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from affine import Affine

from gee_fusion.classes import NO_LABEL, prior_lut
from gee_fusion.deep.datasets import Normalisation, mid_month_doy, normalise
from gee_fusion.engine import ensure_connected
from gee_fusion.errors import ConfigError, DataError
from gee_fusion.export.fetch import load_by_window, open_map, open_stack, stack_bands
from gee_fusion.export.patch_store import BandStats
from gee_fusion.grid import PixelGrid
from gee_fusion.recipe.composite import COUNT_BAND
from gee_fusion.recipe.monthly_stacks import StackRecipe


class RecipeSource:
    """:class:`~gee_fusion.deep.infer.raster_source.RasterSource` of a recipe's stacks over a grid.

    Reads come in tile-row order from sliding-window inference; a read outside the cached strip
    fetches ``strip_rows`` (or more) rows of the current columns from the engine (xee, window by
    window), scales them and drops the previous strip. The current columns are the whole width,
    or a column band announced by :meth:`begin_band` (inference over wide rasters). Pads are per
    window: a month without a valid observation inside the window is padded, as a missing month
    of a training patch is.

    Args:
        recipe: The monthly stacks (months, bands, masks) the model was trained on.
        grid: The area to map.
        bands: Sensor -> band names the model expects (checked against the recipe).
        stats: Sensor -> band -> training statistics.
        normalisation: ``zscore`` or ``quantile`` (as in training).
        prior: ``(asset, band)`` of a prior map to read as one-hot indices, or None.
        window: Side (px) of the windows fetched through xee.
        strip_rows: Rows fetched at a time (memory: strip_rows x width (or band width) x sum(T x C)
            x 4 bytes).
    """

    def __init__(
        self,
        recipe: StackRecipe,
        grid: PixelGrid,
        *,
        bands: Mapping[str, Sequence[str]],
        stats: Mapping[str, Mapping[str, BandStats]],
        normalisation: Normalisation,
        prior: tuple[str, str] | None = None,
        strip_rows: int = 512,
        window: int = 256,
    ) -> None:
        if strip_rows < 1:
            raise ConfigError(f"strip_rows must be positive, got {strip_rows}.")
        ensure_connected()
        self.height, self.width = grid.height, grid.width
        self.crs = grid.crs
        self.transform = Affine(*grid.transform)
        self._strip_rows, self._how, self._window = strip_rows, normalisation, window
        self._open: dict[str, Any] = {}
        self._bands: dict[str, list[str]] = {}
        for sensor, want in bands.items():
            ds, have = open_stack(recipe, sensor, grid), recipe.bands(sensor)
            if list(want) != have:
                raise DataError(
                    f"The recipe gives {sensor} bands {have}, the checkpoint expects {list(want)}."
                )
            self._open[sensor], self._bands[sensor] = ds, have
        self._stats = stats
        self._doy = {s: mid_month_doy(recipe.times()) for s in bands}
        self._prior = open_map(*prior, grid) if prior is not None else None
        self._rows = (0, 0)
        self._cols = (0, self.width)
        self._cache: dict[str, np.ndarray] = {}
        self.strips_fetched = 0

    @property
    def columns(self) -> tuple[int, int]:
        """Columns ``(start, stop)`` that fetches cover (the whole width, or the current band)."""
        return self._cols

    def begin_band(self, cols: slice) -> None:
        """The reads that follow stay within these columns: fetch only them (drops the cache)."""
        c0, c1 = cols.start or 0, self.width if cols.stop is None else cols.stop
        if not 0 <= c0 < c1 <= self.width:
            raise DataError(f"Band columns {c0}:{c1} are outside the raster's {self.width} columns.")
        self._cols, self._rows, self._cache = (c0, c1), (0, 0), {}

    def _fetch(self, start: int, stop: int) -> None:
        stop = min(self.height, max(stop, start + self._strip_rows))
        self._cache = {}
        x = slice(*self._cols)
        for sensor, ds in self._open.items():
            bands = self._bands[sensor]
            part = ds.isel(y=slice(start, stop), x=x)
            raw = stack_bands(
                load_by_window(part, [*bands, COUNT_BAND], window=self._window, progress=False), bands
            )
            self._cache[f"{sensor}_observed"] = np.isfinite(raw).any(axis=1)
            self._cache[sensor], _ = normalise(raw, self._stats[sensor], bands, self._how)
        if self._prior is not None:
            name = str(next(iter(self._prior.data_vars)))
            arr = load_by_window(
                self._prior.isel(y=slice(start, stop), x=x), [name], window=self._window, progress=False
            )
            self._cache["prior"] = prior_lut()[np.nan_to_num(arr[name][0], nan=NO_LABEL).astype(np.uint8)]
        observed = [self._cache[f"{s}_observed"].any(axis=0) for s in self._open]
        self._cache["valid"] = np.asarray(np.any(observed, axis=0))
        self._rows = (start, stop)
        self.strips_fetched += 1

    def read(self, rows: slice, cols: slice) -> dict[str, np.ndarray]:
        """Per-sample batch parts of the window (fetching a new strip when needed)."""
        r0, r1 = rows.start or 0, rows.stop if rows.stop is not None else self.height
        c0, c1 = cols.start or 0, cols.stop if cols.stop is not None else self.width
        if not (0 <= r0 < r1 <= self.height and 0 <= c0 < c1 <= self.width):
            raise DataError(f"Window rows {r0}:{r1}, cols {c0}:{c1} is outside the raster.")
        if not (self._cols[0] <= c0 and c1 <= self._cols[1]):  # left the band: back to whole rows
            self._cols, self._rows = (0, self.width), (0, 0)
        if not (self._rows[0] <= r0 and r1 <= self._rows[1]):
            self._fetch(r0, r1)
        a, b = r0 - self._rows[0], r1 - self._rows[0]
        cols = slice(c0 - self._cols[0], c1 - self._cols[0])
        out: dict[str, np.ndarray] = {}
        for sensor in self._open:
            out[sensor] = self._cache[sensor][:, :, a:b, cols]
            out[f"{sensor}_doy"] = self._doy[sensor]
            out[f"{sensor}_pad"] = np.asarray(
                ~self._cache[f"{sensor}_observed"][:, a:b, cols].any(axis=(1, 2))
            )
        if "prior" in self._cache:
            out["prior"] = self._cache["prior"][a:b, cols]
        out["valid"] = self._cache["valid"][a:b, cols]
        return out
