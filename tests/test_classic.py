"""The in-cloud Random Forest job: metrics equal scikit-learn's on the forest's own predictions,
block vs random-pixel CV in the record, held-out blocks computed on the server as on the client,
baselines and the map; bad labels refused with typed errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ee
import numpy as np
import pytest
import rasterio
from sklearn.metrics import accuracy_score, cohen_kappa_score, confusion_matrix, f1_score

import gee_fusion
from gee_fusion.classic.cloud_rf import PREDICTED, split_of, train_rf
from gee_fusion.classic.job import CloudRFConfig, CloudRFResult, run_cloud_rf, table_collection
from gee_fusion.errors import DataError
from gee_fusion.export.blocks import BlockSplit
from gee_fusion.grid import PixelGrid
from gee_fusion.local.catalog import CATALOG, register_numpy_image
from gee_fusion.local.world.config import DEFAULT_WORLD as W

X0, Y1 = W.origin
AREA = {"origin": [X0 + 2000.0, Y1 - 2000.0], "size_px": [160, 160]}
SMALL = {"area": AREA, "blocks": {"block_px": 32}, "sampling": {"points_per_class": 60, "folds": 3},
         "rf": {"number_of_trees": 30}}  # fmt: skip


@pytest.fixture(scope="module")
def result(local_engine: gee_fusion.Connection, tmp_path_factory: pytest.TempPathFactory) -> CloudRFResult:
    cfg = CloudRFConfig.model_validate(
        {**SMALL, "baselines": ["random_forest", "extra_trees", "svm_rbf", "knn"]}
    )
    return run_cloud_rf(cfg, tmp_path_factory.mktemp("crf"), progress=False)


def test_forest_metrics_equal_scikit_learn_on_its_own_predictions(result: CloudRFResult) -> None:
    inline = table_collection(result.samples)
    rf = train_rf(split_of(inline, "train"), result.inputs, CloudRFConfig.model_validate(SMALL).rf)
    test = split_of(inline, "test").classify(rf, PREDICTED)
    y_true = np.array(test.aggregate_array("label").getInfo())
    y_pred = np.array(test.aggregate_array(PREDICTED).getInfo())
    m = result.rf.matrix
    codes = list(result.table.codes)
    assert m.matrix.tolist() == confusion_matrix(y_true, y_pred, labels=codes).tolist()
    assert m.overall_accuracy == pytest.approx(accuracy_score(y_true, y_pred))
    assert m.kappa == pytest.approx(cohen_kappa_score(y_true, y_pred))
    assert m.weighted_f1 == pytest.approx(f1_score(y_true, y_pred, average="weighted"))
    assert m.macro_f1 == pytest.approx(f1_score(y_true, y_pred, average="macro"))


def test_the_record_holds_both_cross_validations_ablation_baselines_and_map(result: CloudRFResult) -> None:
    record = json.loads(result.record.read_text())
    for kind in ("spatial_block", "random_pixel"):
        cv = record["rf"]["cv"][kind]
        assert len(cv["folds"]) == 3 and cv["mean"] == pytest.approx(np.mean(cv["folds"]))
        assert cv["std"] == pytest.approx(np.std(cv["folds"]))
    assert set(record["ablation"]) == {"S1", "S2"}
    assert [b["name"] for b in record["baselines"]] == ["random_forest", "extra_trees", "svm_rbf", "knn"]
    assert record["baselines"][1]["importance"] and record["rf"]["importance"]
    assert record["split_id"] == result.split.fingerprint() and record["samples"]["total"] == len(
        result.samples.y
    )
    with rasterio.open(result.map_path) as src:
        values = set(np.unique(src.read(1)).tolist()) - {255}
        assert values <= set(result.table.codes) and src.colormap(1)[values.pop()][3] == 255


def test_samples_carry_the_split_of_their_block(result: CloudRFResult) -> None:
    codes = result.split.codes()
    np.testing.assert_array_equal(result.samples.split, codes[result.samples.block])
    assert set(result.samples.split.tolist()) == {0, 1, 2}
    # the server's block ids are the client's
    split = result.split
    values = ee.data.computePixels({"expression": split.block_image(), "grid": split.grid.to_ee()})["block"]
    rows, cols = np.indices(split.grid.shape)
    np.testing.assert_array_equal(values, split.block_of(rows, cols))


def test_the_patch_store_and_the_forest_hold_out_the_same_blocks() -> None:
    from gee_fusion.export.area import AreaConfig
    from gee_fusion.export.patches import PatchExportConfig, block_split

    cfg = PatchExportConfig(area=AreaConfig(size_px=(200, 130)), patch_size=32, block_patches=2, seed=3)
    split = block_split(cfg)
    assert (split.grid.width, split.grid.height, split.block_px) == (192, 128, 64)
    assert split == BlockSplit(split.grid, 64, cfg.split_fractions, 3)


@pytest.fixture
def label_asset(local_engine: gee_fusion.Connection) -> Iterator[Any]:
    made = []

    def register(name: str, labels: np.ndarray) -> str:
        register_numpy_image(f"test/{name}", {"label": labels}, crs=W.crs,
                             transform=(10.0, 0.0, X0 + 2000.0, 0.0, -10.0, Y1 - 2000.0))  # fmt: skip
        made.append(f"test/{name}")
        return f"test/{name}"

    yield register
    for asset in made:
        CATALOG.unregister(asset)


def test_bad_labels_are_refused_with_what_differs(label_asset: Any, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    base = rng.choice([1, 6, 9, 11], size=(160, 160)).astype(np.uint8)
    unknown = base.copy()
    unknown[5:8, 5:8] = 20
    cfg = {**SMALL, "baselines": [], "map": False, "ablation": False}
    with pytest.raises(DataError, match=r"class codes \[20\] \(9 pixels\) that are not in the MultiSenGE"):
        run_cloud_rf(
            CloudRFConfig.model_validate(
                {**cfg, "labels": {"source": "raster", "asset": label_asset("unknown", unknown)}}
            ),
            tmp_path,
            progress=False,
        )
    rare = base.copy()
    rare[100, 100:102] = 14  # two pixels of water
    with pytest.raises(
        DataError, match=r"fewer samples than the 3 folds: Water, wetlands and open spaces \(10\): 2"
    ):
        run_cloud_rf(
            CloudRFConfig.model_validate(
                {**cfg, "labels": {"source": "raster", "asset": label_asset("rare", rare)}}
            ),
            tmp_path,
            progress=False,
        )
    polygons = tmp_path / "labels.geojson"
    polygons.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"code": 6}, "geometry": {"type": "Polygon", "coordinates": [[
            [1.0, 49.4], [1.1, 49.4], [1.1, 49.5], [1.0, 49.4]]]}}]}))  # fmt: skip
    with pytest.raises(DataError, match=r"have no property 'class' \(they have \['code'\]\)"):
        run_cloud_rf(
            CloudRFConfig.model_validate({**cfg, "labels": {"source": "vector", "asset": str(polygons)}}),
            tmp_path,
            progress=False,
        )
    with pytest.raises(ValueError, match="needs an asset ID"):
        CloudRFConfig.model_validate({"labels": {"source": "raster"}})


def test_vector_labels_are_painted_on_the_server(tmp_path: Path) -> None:
    grid = PixelGrid(W.crs, (10.0, 0.0, X0 + 2000.0, 0.0, -10.0, Y1 - 2000.0), 160, 160)
    half = [[X0 + 2000.0, Y1 - 3600.0], [X0 + 2800.0, Y1 - 3600.0], [X0 + 2800.0, Y1 - 2000.0],
            [X0 + 2000.0, Y1 - 2000.0], [X0 + 2000.0, Y1 - 3600.0]]  # fmt: skip
    other = [[X0 + 2800.0, Y1 - 3600.0], [X0 + 3600.0, Y1 - 3600.0], [X0 + 3600.0, Y1 - 2000.0],
             [X0 + 2800.0, Y1 - 2000.0], [X0 + 2800.0, Y1 - 3600.0]]  # fmt: skip
    from rasterio.warp import transform_geom

    feats = [
        {"type": "Feature", "properties": {"class": code},
         "geometry": transform_geom(W.crs, "EPSG:4326", {"type": "Polygon", "coordinates": [ring]})}
        for code, ring in ((6, half), (11, other))
    ]  # fmt: skip
    path = tmp_path / "fields.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    from gee_fusion.classic.labels import LabelsConfig, source_labels

    labels = source_labels(LabelsConfig(source="vector", asset=str(path)))
    values = ee.data.computePixels({"expression": labels, "grid": grid.to_ee()})["label"]
    assert (values[:, 5:75] == 6).all() and (values[:, 85:155] == 11).all()


def test_the_shipped_config_and_script(tmp_path: Path) -> None:
    from gee_fusion.classic.job import load_cloud_rf_config
    from tests.scripts import EE_SCRIPTS, load_script

    cfg = load_cloud_rf_config(EE_SCRIPTS / "configs" / "cloud_rf_fusion20.yaml")
    assert cfg.stack.product == "fusion20" and cfg.sampling.folds == 5
    script = load_script("cloud_rf")
    small = tmp_path / "c.yaml"
    small.write_text(
        f"area: {{origin: [{X0 + 2000.0}, {Y1 - 2000.0}], size_px: [96, 96]}}\nblocks: {{block_px: 32}}\n"
        "sampling: {points_per_class: 30, folds: 2}\nrf: {number_of_trees: 10}\nbaselines: [knn]\n"
        "map: false\n"
        "labels: {scheme: 6}\n"
    )
    try:
        assert script.main([str(small), str(tmp_path / "out")]) == 0
    finally:
        gee_fusion.connect("local")
    assert (tmp_path / "out" / "cloud_rf.json").exists()
    assert script.main([str(tmp_path / "missing.yaml")]) == 2


def test_labels_on_another_grid_are_refused_unless_resampling(tmp_path: Path) -> None:
    from gee_fusion.classic.labels import LabelsConfig, check_label_grid

    grid = PixelGrid(W.crs, (10.0, 0.0, X0 + 2000.0, 0.0, -10.0, Y1 - 2000.0), 160, 160)
    register_numpy_image("test/shifted", {"label": np.ones((50, 50), np.uint8)}, crs=W.crs,
                         transform=(10.0, 0.0, X0 + 2005.0, 0.0, -10.0, Y1 - 2000.0))  # fmt: skip
    register_numpy_image("test/coarse", {"label": np.ones((50, 50), np.uint8)}, crs=W.crs,
                         transform=(20.0, 0.0, X0 + 2000.0, 0.0, -20.0, Y1 - 2000.0))  # fmt: skip
    try:
        with pytest.raises(DataError, match=r"another grid than the stack \(pixel edges offset by \(5, 0\)"):
            check_label_grid(LabelsConfig(source="raster", asset="test/shifted"), grid)
        with pytest.raises(DataError, match="pixel size 20 x 20 vs 10 x 10"):
            check_label_grid(LabelsConfig(source="raster", asset="test/coarse"), grid)
        check_label_grid(LabelsConfig(source="raster", asset="test/coarse", resample=True), grid)
        check_label_grid(LabelsConfig(), grid)  # the demo truth is on the world's 10 m lattice
    finally:
        CATALOG.unregister("test/shifted")
        CATALOG.unregister("test/coarse")


def test_the_forest_on_the_monthly_series_stratifies_by_class_and_split(tmp_path: Path) -> None:
    cfg = CloudRFConfig.model_validate({
        **SMALL, "stack": {"product": "monthly_series", "series": {"months": [7, 8], "sensors": ["S1"]}},
        "baselines": [], "map": False, "ablation": False, "sampling": {"points_per_class": 15, "folds": 2},
    })  # fmt: skip
    result = run_cloud_rf(cfg, tmp_path, progress=False)
    assert result.inputs == [f"S1_{b}_2021-0{m}" for m in (7, 8) for b in ("VV", "VH", "VVVH")]
    s = result.samples
    for code in np.unique(s.y):
        for split in (0, 1, 2):
            n = int(((s.y == code) & (s.split == split)).sum())
            assert n <= 15  # at most points_per_class of each class in each split
    assert ((s.y == np.unique(s.y)[0]) & (s.split == 2)).sum() > 0


def test_worldcover_as_the_reference_uses_its_own_table(tmp_path: Path) -> None:
    cfg = CloudRFConfig.model_validate({
        **SMALL, "labels": {"source": "worldcover"}, "baselines": ["knn"], "ablation": False,
        "sampling": {"points_per_class": 20, "folds": 2},
    })  # fmt: skip
    result = run_cloud_rf(cfg, tmp_path, progress=False)
    assert result.table.scheme == 11 and result.table.names[4] == "Built-up"
    assert set(np.unique(result.samples.y)) <= {10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100}
    with rasterio.open(result.map_path) as src:
        assert set(np.unique(src.read(1)).tolist()) - {255} <= set(result.table.codes)
        assert src.colormap(1)[50][:3] == (250, 0, 0)
