"""The export job and `gee-fusion export`: the fusion-20 stack and the monthly series of the
recipe over an area, equal to what the deep stage's fetching gives, resumable, refusing mixes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr
from typer.testing import CliRunner

from gee_fusion.cli import app
from gee_fusion.export.area import AreaConfig
from gee_fusion.export.job import ExportConfig, load_export_config, run_export
from gee_fusion.export.patches import PatchExportConfig, fetch_area
from gee_fusion.local.world.config import DEFAULT_WORLD as W
from gee_fusion.recipe.stacks import FUSION20_BANDS

REPO = Path(__file__).resolve().parents[1]
X0, Y1 = W.origin


def test_the_shipped_configs_validate() -> None:
    for name in ("export_fusion20.yaml", "export_monthly_series.yaml"):
        path = REPO / "ee_scripts" / "configs" / name
        cfg = load_export_config(path)
        assert cfg.engine == "local" and cfg.area.grid().width == W.size_px
        lines = path.read_text().splitlines()
        header = " ".join(lines[: next(i for i, line in enumerate(lines) if not line.startswith("#"))])
        assert ("COG" in header) == ("cog" in cfg.formats), f"{name}: the comment and `formats` disagree"


def test_the_monthly_series_equals_the_deep_stages_fetch(tmp_path: Path) -> None:
    area = AreaConfig(origin=(X0 + 4000.0, Y1 - 4000.0), size_px=(96, 80))
    cfg = ExportConfig.model_validate(
        {"name": "series", "product": "monthly_series", "area": area.model_dump(),
         "series": {"months": [7, 8], "sensors": ["S1"]}, "block": 16, "request_bytes": 2**16}
    )  # fmt: skip
    result = run_export(cfg, tmp_path, progress=False)
    assert result.plan.requests > 1  # several tiles, stitched
    ds = xr.open_zarr(result.zarr, consolidated=True)
    names = list(ds["band"].values)
    assert names[:4] == ["S1_VV_2021-07", "S1_VH_2021-07", "S1_VVVH_2021-07", "S1_count_2021-07"]
    ref = fetch_area(PatchExportConfig(area=area, months=[7, 8], sensors=["S1"]), progress=False)
    stack, bands = ref.sensors["S1"]  # (time, band, y, x), NaN where a month had no observation
    got = ds["data"].values
    for t, month in enumerate(("2021-07", "2021-08")):
        for c, band in enumerate(bands):
            np.testing.assert_allclose(got[names.index(f"S1_{band}_{month}")], stack[t, c], rtol=1e-6)
    manifest = json.loads(result.manifest.read_text())
    assert manifest["recipe"]["product"] == "monthly_series" and len(manifest["recipe_hash"]) == 16


def test_cli_export_of_the_fusion20_stack_resumes_and_refuses_mixes(tmp_path: Path) -> None:
    cfg = tmp_path / "f20.yaml"
    cfg.write_text("name: f20\nproduct: fusion20\nblock: 16\nformats: [cog]\n")
    runner = CliRunner()
    area = f"{X0 + 3000.0},{Y1 - 3000.0},40,32"
    res = runner.invoke(app, ["export", str(cfg), "--out", str(tmp_path / "out"), "--area", area])
    assert res.exit_code == 0, res.output
    with rasterio.open(tmp_path / "out" / "f20.tif") as cog:
        assert cog.descriptions == FUSION20_BANDS and (cog.width, cog.height) == (40, 32)
        assert np.isfinite(cog.read(13)).mean() > 0.9  # NDVI
    assert not (tmp_path / "out" / "f20.zarr").exists()  # only the COG was asked for
    again = runner.invoke(app, ["export", str(cfg), "--out", str(tmp_path / "out"), "--area", area])
    assert again.exit_code == 0 and "0 requests" in again.output  # nothing left to do
    other = runner.invoke(app, ["export", str(cfg), "--out", str(tmp_path / "out"), "--area", "demo"])
    assert other.exit_code == 2 and "--overwrite" in other.output and "Traceback" not in other.output
    bad = runner.invoke(app, ["export", str(cfg), "--out", str(cfg)])
    assert bad.exit_code == 2 and "is a file" in bad.output


def test_bad_export_configs_name_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("name: x\nproduct: fusion21\nworkers: 99\n")
    res = CliRunner().invoke(app, ["export", str(cfg)])
    assert res.exit_code == 2 and "product" in res.output and "'fusion21'" in res.output
    assert "workers" in res.output and "Traceback" not in res.output
    with pytest.raises(Exception, match="name"):
        ExportConfig.model_validate({"name": "../x", "product": "fusion20"})
