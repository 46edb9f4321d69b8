import ee
import numpy as np

from tests.conftest import pixels


def test_synthetic_roundtrip(syn):
    img = ee.Image("test/syn_img")
    out = pixels(img, syn.grid)
    v, m = out["B1"]
    np.testing.assert_array_equal(m, syn.mask[0])
    np.testing.assert_array_equal(v[m], syn.b1[0][m])
