"""The in-cloud Random Forest job: metrics equal scikit-learn's on the forest's own predictions,
block vs random-pixel CV in the record, held-out blocks computed on the server as on the client,
every block in one CV fold, the six baselines and the map, the monthly series with the sensor
ablation; bad labels refused with typed errors."""

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
from gee_fusion.classes import class_table
from gee_fusion.classic.baselines import BASELINES, Baseline, make_model, run_baselines
from gee_fusion.classic.cloud_rf import PREDICTED, split_of, train_rf
from gee_fusion.classic.job import (
    CloudRFConfig,
    CloudRFResult,
    load_cloud_rf_config,
    run_cloud_rf,
    table_collection,
)
from gee_fusion.classic.samples import SampleTable
from gee_fusion.errors import DataError
from gee_fusion.export.blocks import BlockSplit
from gee_fusion.grid import PixelGrid
from gee_fusion.local.catalog import CATALOG, register_numpy_image
from gee_fusion.local.world.config import DEFAULT_WORLD as W
from gee_fusion.report.comparison import read_cloud_record
from gee_fusion.report.html import write_report
from tests.scripts import EE_SCRIPTS

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
    s = result.samples
    codes = result.split.codes()
    np.testing.assert_array_equal(s.split, codes[s.block])
    assert set(s.split.tolist()) == {0, 1, 2}
    # spatial-block CV: every block belongs to exactly one fold; random-pixel CV splits blocks
    folds_of = {int(b): set(s.block_fold[s.block == b].tolist()) for b in np.unique(s.block)}
    assert all(len(f) == 1 for f in folds_of.values()), folds_of
    assert len(set().union(*folds_of.values())) == 3  # the three folds all hold blocks
    assert any(len(set(s.pixel_fold[s.block == b].tolist())) > 1 for b in folds_of)
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
    from tests.scripts import load_script

    cfg = load_cloud_rf_config(EE_SCRIPTS / "configs" / "cloud_rf_fusion20.yaml")
    assert cfg.stack.product == "fusion20" and cfg.sampling.folds == 5
    monthly = load_cloud_rf_config(EE_SCRIPTS / "configs" / "cloud_rf_monthly.yaml")
    assert monthly.stack.product == "monthly_series" and monthly.stack.series.sensors == ["S2", "S1"]
    assert monthly.ablation and monthly.sampling.folds == 5 and monthly.baselines == list(BASELINES)
    grid = monthly.area.grid()
    assert grid.width * grid.height <= 320 * 320  # sized to run in under two minutes locally
    x0, y1, side = grid.transform[2], grid.transform[5], W.size_px * 10.0
    assert x0 >= X0 and x0 + 10.0 * grid.width <= X0 + side  # inside the demo city
    assert Y1 - side <= y1 - 10.0 * grid.height and y1 <= Y1
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
    """The shipped monthly config (S1 + S2 series, ablation on) on a small area and two months."""
    shipped = load_cloud_rf_config(EE_SCRIPTS / "configs" / "cloud_rf_monthly.yaml")
    stack = shipped.stack.model_copy(
        update={"series": shipped.stack.series.model_copy(update={"months": [7, 8]})}
    )
    cfg = CloudRFConfig.model_validate({
        **shipped.model_dump(), **SMALL, "stack": stack.model_dump(), "baselines": [], "map": False,
        "sampling": {"points_per_class": 15, "folds": 2}, "rf": {"number_of_trees": 10},
    })  # fmt: skip
    assert cfg.ablation and cfg.stack.series.sensors == ["S2", "S1"]
    result = run_cloud_rf(cfg, tmp_path, progress=False)
    s1 = [f"S1_{b}_2021-0{m}" for m in (7, 8) for b in ("VV", "VH", "VVVH")]
    s2 = [f"S2_{b}_2021-0{m}" for m in (7, 8) for b in cfg.stack.series.s2_bands]
    assert sorted(result.inputs) == sorted(s1 + s2)
    s = result.samples
    for code in np.unique(s.y):
        for split in (0, 1, 2):
            n = int(((s.y == code) & (s.split == split)).sum())
            assert n <= 15  # at most points_per_class of each class in each split
    assert ((s.y == np.unique(s.y)[0]) & (s.split == 2)).sum() > 0
    # the ablation: S1 only and S2 only beside S1 + S2, scored on the same test samples
    assert set(result.ablation) == {"S1", "S2"}
    assert set(result.ablation["S1"].importance) == set(s1)
    assert set(result.ablation["S2"].importance) == set(s2)
    test = int((s.split == 2).sum())
    assert (
        result.rf.matrix.total
        == result.ablation["S1"].matrix.total
        == result.ablation["S2"].matrix.total
        == test
    )
    cloud = read_cloud_record(result.record)
    assert list(cloud.ablation) == ["S1", "S2", "S1+S2"]
    assert cloud.ablation["S1+S2"].matrix.tolist() == result.rf.matrix.matrix.tolist()
    _, metrics = write_report(tmp_path / "report", runs=cloud.runs, cloud=cloud)
    ablation = json.loads(metrics.read_text())["ablation"]
    assert list(ablation) == ["S1", "S2", "S1+S2"]
    for name, figures in ablation.items():
        assert figures["pixels"] == test and 0 <= figures["oa"] <= 1, name
    assert ablation["S1+S2"]["oa"] == pytest.approx(result.rf.matrix.overall_accuracy)
    assert ablation["S1"]["oa"] == pytest.approx(result.ablation["S1"].matrix.overall_accuracy)


def synthetic_samples(seed: int = 0) -> SampleTable:
    """A small sample table: three classes separated by the first two of five inputs, blocks of 50
    rows, half the blocks for training and a quarter each for validation and test."""
    rng = np.random.default_rng(seed)
    n = 600
    y = np.repeat([1, 6, 9], n // 3)
    centres = {1: (0.0, 0.0), 6: (4.0, 0.0), 9: (0.0, 4.0)}
    x = rng.normal(size=(n, 5))
    x[:, :2] += np.array([centres[int(c)] for c in y])
    x[:, 2] *= 100.0  # a noise input on another scale (what standardising is for)
    order = rng.permutation(n)
    x, y = x[order], y[order]
    block = np.arange(n) // 50
    split = np.array([0, 0, 1, 2] * 3)[block]
    return SampleTable(("a", "b", "noise", "c", "d"), x, y, block, split, block % 3, np.arange(n) % 3)


@pytest.mark.parametrize("name", BASELINES)
def test_each_baseline_learns_the_samples_and_is_scored_on_the_test_blocks(name: Baseline) -> None:
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    table, classes = synthetic_samples(), class_table(10)
    (got,) = run_baselines(table, classes, names=[name], seed=0)
    assert got.name == name
    test = table.split == 2
    assert got.matrix.total == int(test.sum()) and list(got.matrix.codes or []) == list(classes.codes)
    assert got.matrix.overall_accuracy > 0.8, got.matrix.overall_accuracy
    (again,) = run_baselines(table, classes, names=[name], seed=0)
    assert again.matrix.matrix.tolist() == got.matrix.matrix.tolist()  # seeded
    model = make_model(name, seed=0)
    scaled = isinstance(model, Pipeline) and isinstance(model.steps[0][1], StandardScaler)
    assert scaled == (name in ("svm_rbf", "knn", "mlp"))
    if name == "extra_trees":
        assert list(got.importance) == list(table.inputs)
        assert sum(got.importance.values()) == pytest.approx(1.0)
        assert min(got.importance["a"], got.importance["b"]) > max(
            got.importance[k] for k in ("noise", "c", "d")
        )
    if name in ("svm_rbf", "knn", "mlp"):
        assert got.importance == {}


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
