"""Declarative job configuration (pydantic models loaded from YAML)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gee_fusion.errors import ConfigError


class MonthlyJobConfig(BaseModel):
    """The monthly-composite job: which collection, bands, period, masking and outputs."""

    model_config = ConfigDict(extra="forbid")

    engine: Literal["local", "earthengine", "auto"] = "local"
    project: str | None = Field(None, description="Google Cloud project (Earth Engine only).")
    collection: str = "local/slovenia/S2_NDVI"
    bands: list[str] = Field(default_factory=lambda: ["NDVI"], min_length=1)
    cloud_mask: Literal["clm", "scl", "none"] = Field(
        "clm",
        description="'clm': drop pixels whose CLM band is non-zero (eo-learn cloud mask); "
        "'scl': drop Sentinel-2 SCL no-data, saturated, cloud-shadow, cloud and cirrus pixels.",
    )
    ndvi_from: tuple[str, str] | None = Field(
        None, description="(nir, red) bands: compute band NDVI from them before compositing."
    )
    start: date = date(2015, 7, 1)
    end: date = date(2018, 1, 1)
    method: Literal["median", "mean", "min", "max", "medoid", "quality"] = "median"
    quality_band: str | None = Field(None, description="Band ranking observations for method 'quality'.")
    out: Path = Path("outputs/demo")
    name: str = "slovenia_ndvi_monthly"

    @model_validator(mode="after")
    def _period(self) -> MonthlyJobConfig:
        if self.end <= self.start:
            raise ValueError(f"end ({self.end}) must come after start ({self.start})")
        return self


def load_monthly_config(path: str | Path) -> MonthlyJobConfig:
    """Read a :class:`MonthlyJobConfig` from YAML, with errors that name the bad field."""
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"Cannot read config {path}: {exc}") from exc
    try:
        return MonthlyJobConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"Invalid config {path}:\n{exc}") from exc
