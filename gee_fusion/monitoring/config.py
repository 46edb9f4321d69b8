"""The monthly-composite job's configuration (a pydantic model loaded from YAML)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gee_fusion import ids
from gee_fusion.config import load_yaml
from gee_fusion.engine import EngineChoice
from gee_fusion.recipe.composite import Reduction


class MonthlyJobConfig(BaseModel):
    """The monthly-composite job: which collection, bands, period, masking and outputs.

    The defaults are the embedded demo world's city: SCL cloud-masked monthly NDVI medians of
    one year of ``COPERNICUS/S2_SR_HARMONIZED`` (served offline by the local engine). The real
    Slovenia series is ``ee_scripts/configs/slovenia_monthly.yaml``.

    ``engine`` and ``project`` are read by the CLI and ``ee_scripts/``, which connect before
    running the job; the library runs it on the engine already connected.
    """

    model_config = ConfigDict(extra="forbid")

    engine: EngineChoice = "local"
    project: str | None = Field(None, description="Google Cloud project (Earth Engine only).")
    collection: str = ids.S2_SR_HARMONIZED
    bands: list[str] = Field(default_factory=lambda: ["NDVI"], min_length=1)
    cloud_mask: Literal["clm", "scl", "none"] = Field(
        "scl",
        description="'clm': drop pixels whose CLM band is non-zero (eo-learn cloud mask); "
        "'scl': drop Sentinel-2 SCL no-data, saturated, cloud-shadow, cloud and cirrus pixels.",
    )
    ndvi_from: tuple[str, str] | None = Field(
        ("B8", "B4"), description="(nir, red) bands: compute band NDVI from them before compositing."
    )
    start: date = date(2021, 1, 1)
    end: date = date(2022, 1, 1)
    method: Reduction = "median"
    quality_band: str | None = Field(None, description="Band ranking observations for method 'quality'.")
    out: Path = Path("outputs/demo")
    name: str = Field("demo_city_ndvi_2021", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

    @model_validator(mode="after")
    def _period(self) -> MonthlyJobConfig:
        if self.end <= self.start:
            raise ValueError(f"end ({self.end}) must come after start ({self.start})")
        return self


def load_monthly_config(path: str | Path) -> MonthlyJobConfig:
    """Read a :class:`MonthlyJobConfig` from YAML, with errors that name the file and bad keys."""
    return load_yaml(path, MonthlyJobConfig, what="monthly job config")
