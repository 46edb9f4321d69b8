"""Spectral indices: one formula table, equal to Awesome Spectral Indices (spyndex), same values
on the Earth Engine path (local engine) and the numpy path."""

from __future__ import annotations

import ee
import numpy as np
import pytest

from gee_fusion.errors import ConfigError
from gee_fusion.local.catalog import CATALOG, register_numpy_image
from gee_fusion.recipe import indices

spyndex = pytest.importorskip("spyndex", reason="spyndex (dev extra) is needed to compare with ASI")

SYMBOLS = ("B", "G", "R", "N", "S1", "S2")


@pytest.fixture(scope="module")
def refl() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(11)
    return {s: rng.uniform(0.01, 0.6, (16, 20)) for s in SYMBOLS}


@pytest.mark.parametrize("name", sorted(indices.INDICES))
def test_numpy_path_equals_spyndex(name: str, refl: dict[str, np.ndarray]) -> None:
    index = indices.get(name)
    ours = indices.compute(name, refl)
    params = {s: refl[s] for s in index.bands}
    params.update(index.constants)  # e.g. SAVI with L = 0.5, not ASI's default 1.0
    theirs = spyndex.computeIndex(index=name, params=params)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    assert index.formula.replace(" ", "") == spyndex.indices[name].formula.replace(" ", "")


def test_savi_constant_differs_from_asi_default(refl: dict[str, np.ndarray]) -> None:
    assert spyndex.constants["L"].default == 1.0 and indices.get("SAVI").constants["L"] == 0.5
    asi_default = spyndex.computeIndex(index="SAVI", params={"N": refl["N"], "R": refl["R"], "L": 1.0})
    np.testing.assert_allclose(indices.compute("SAVI", refl, constants={"L": 1.0}), asi_default)


def test_earth_engine_path_equals_numpy_path(refl: dict[str, np.ndarray]) -> None:
    dn = {indices.SENTINEL2_BANDS[s]: np.round(refl[s] * 1e4).astype(np.uint16) for s in SYMBOLS}
    register_numpy_image("test/s2_dn", dn, crs="EPSG:32631", transform=(10, 0, 300000, 0, -10, 5000000))
    try:
        img = indices.add_indices(ee.Image("test/s2_dn"), sorted(indices.INDICES))
        out = ee.data.computePixels(
            {"expression": img.select(sorted(indices.INDICES)), "fileFormat": "NUMPY_NDARRAY"}
        )
        scaled = {s: dn[indices.SENTINEL2_BANDS[s]].astype(np.float64) * 1e-4 for s in SYMBOLS}
        # float32 on the server: compare away from near-zero denominators (EVI, BAI blow up there)
        evi_den = scaled["N"] + 6 * scaled["R"] - 7.5 * scaled["B"] + 1
        stable = np.abs(evi_den) > 0.05
        for name in sorted(indices.INDICES):
            want = indices.compute(name, scaled)
            sel = stable if name == "EVI" else np.ones_like(stable)
            np.testing.assert_allclose(out[name][sel], want[sel], rtol=1e-4, atol=1e-5, err_msg=name)
            assert out.dtype[name] == np.float32
    finally:
        CATALOG.unregister("test/s2_dn")


def test_bad_input() -> None:
    with pytest.raises(ConfigError, match="Unknown spectral index"):
        indices.get("NOPE")
    with pytest.raises(ConfigError, match="needs arrays"):
        indices.compute("NDVI", {"N": np.ones(2)})
    with pytest.raises(ConfigError, match="no constant"):
        indices.compute("NDVI", {"N": np.ones(2), "R": np.ones(2)}, constants={"L": 1.0})
    with pytest.raises(ConfigError, match="band symbols"):
        indices.add_indices(ee.Image(1), ["MNDWI"], bands={"G": "B3"})
