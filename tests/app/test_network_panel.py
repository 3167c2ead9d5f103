"""The network problem panel and the network diagram, driven as a user would.

As in the runs panel's tests, a `Recorder` stands in for the document: it keeps each
``lab_edited`` and hands the new lab straight back with ``set_lab``. Widgets are never shown.
"""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QGraphicsEllipseItem,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
)

from app.network.diagram import NetworkDiagram
from app.network.layer_rows import COL_KIND, COL_VALUE
from app.network.problem_panel import NetworkProblemPanel
from core.lab.format import Lab, NetworkProblem, RunSpec
from core.problems.model_spec import default_model_for, validate_model
from tests.app.recorder import Recorder

MOONS = {"name": "moons", "n": 512, "noise": 0.2, "val_fraction": 0.2}


def network_lab(dataset=None, model=None, **problem) -> Lab:
    kwargs = {"dataset": dict(dataset or MOONS), **problem}
    if model is not None:
        kwargs["model"] = model
    return Lab(
        name="Moons", seed=0, steps=200, problem=NetworkProblem(**kwargs),
        runs=(RunSpec("Adam", "adam", {"lr": 0.01}),),
    )


@pytest.fixture
def panel(qtbot):
    widget = NetworkProblemPanel()
    qtbot.addWidget(widget)
    widget.resize(380, 900)
    widget.set_lab(network_lab())
    return widget


@pytest.fixture
def recorder(panel):
    return Recorder(panel)


def child(panel, cls, name):
    widget = panel.findChild(cls, name)
    assert widget is not None, f"no {cls.__name__} named {name!r}"
    return widget


def choose(combo: QComboBox, data) -> None:
    index = combo.findData(data)
    assert index >= 0, f"{data!r} is not offered"
    combo.setCurrentIndex(index)


def kinds(panel) -> list[str]:
    table = child(panel, QTableWidget, "layerList")
    return [table.cellWidget(row, COL_KIND).currentData() for row in range(table.rowCount())]


# ------------------------------------------------------------------------------- showing


def test_set_lab_shows_data_set_layers_and_parameter_count(panel, qtbot):
    with qtbot.assertNotEmitted(panel.lab_edited):
        panel.set_lab(network_lab())
    assert child(panel, QComboBox, "datasetCombo").currentData() == "moons"
    assert kinds(panel) == ["linear", "act", "linear", "act", "linear"]
    table = child(panel, QTableWidget, "layerList")
    assert table.cellWidget(0, COL_VALUE).value() == 16
    assert table.cellWidget(1, COL_VALUE).currentData() == "relu"
    assert table.item(0, 2).text() == "Linear 2 → 16"
    assert table.item(4, 3).text() == "2"
    assert child(panel, QLabel, "paramCount").text() == "354 parameters"
    assert "512 points, 2 classes" in child(panel, QLabel, "datasetSummary").text()
    assert child(panel, QDoubleSpinBox, "dataSeedBox").value() == 0  # the lab's seed
    assert child(panel, QCheckBox, "dataSeedAuto").isChecked()
    assert child(panel, QSpinBox, "batchSizeBox").value() == 64
    assert not child(panel, QCheckBox, "fullBatchCheck").isChecked()
    assert child(panel, QComboBox, "lossCombo").currentData() == "cross_entropy"
    assert panel.diagram.neuron_count() == 2 + 16 + 16 + 2


def test_every_control_explains_itself(panel):
    controls = [
        w for cls in (QComboBox, QAbstractSpinBox, QCheckBox, QPushButton, QLineEdit)
        for w in panel.findChildren(cls)
        # the line edits inside spin boxes and combo boxes belong to them
        if not isinstance(w.parent(), (QAbstractSpinBox, QComboBox))
    ]
    missing = [f"{type(w).__name__} {w.objectName()!r}" for w in controls if not w.toolTip()]
    assert not missing, f"controls without a tooltip: {missing}"


def test_a_function_lab_disables_the_panel(panel, qtbot):
    with qtbot.assertNotEmitted(panel.lab_edited):
        panel.set_lab(Lab())
    assert not panel.isEnabled()


# ------------------------------------------------------------------------------- data set


def test_choosing_circles_emits_a_lab_on_circles(panel, recorder):
    choose(child(panel, QComboBox, "datasetCombo"), "circles")
    lab, description = recorder.edits[-1]
    assert lab.problem.dataset["name"] == "circles"
    assert lab.problem.dataset["val_fraction"] == 0.2  # shared settings carry over
    assert "noise" not in lab.problem.dataset  # circles' own default noise, not moons'
    assert lab.problem.model == network_lab().problem.model  # the network still fits
    assert "Circles" in description


def test_regenerate_sets_a_new_explicit_seed_shown_in_the_box(panel, recorder):
    panel.new_seed = lambda: 4242
    child(panel, QPushButton, "regenerateButton").click()
    assert recorder.last.problem.dataset["seed"] == 4242
    box = child(panel, QDoubleSpinBox, "dataSeedBox")
    assert box.value() == 4242
    assert not child(panel, QCheckBox, "dataSeedAuto").isChecked()
    # ...and a seed can be typed back.
    box.setValue(17)
    assert recorder.last.problem.dataset["seed"] == 17
    child(panel, QCheckBox, "dataSeedAuto").setChecked(True)
    assert "seed" not in recorder.last.problem.dataset


def test_regenerate_never_draws_the_seed_in_use(panel, recorder):
    draws = iter([0, 0, 5])  # the lab's seed is 0
    panel.new_seed = lambda: next(draws)
    child(panel, QPushButton, "regenerateButton").click()
    assert recorder.last.problem.dataset["seed"] == 5


def test_dataset_parameters_come_from_the_shared_form(panel, recorder):
    child(panel, QSpinBox, "dataParam_n").setValue(300)
    assert recorder.last.problem.dataset["n"] == 300
    assert "300 points" in child(panel, QLabel, "datasetSummary").text()


def test_features_and_standardize(panel, recorder):
    child(panel, QCheckBox, "feature_x2").setChecked(True)
    assert recorder.last.problem.dataset["features"] == ["x", "y", "x2"]
    assert child(panel, QLabel, "paramCount").text() == f"{354 + 16} parameters"
    child(panel, QCheckBox, "standardizeCheck").setChecked(True)
    assert recorder.last.problem.dataset["standardize"] is True


def test_removing_every_feature_is_refused_and_named(panel, recorder, qtbot):
    child(panel, QCheckBox, "feature_x").setChecked(False)
    count = len(recorder.edits)
    with qtbot.assertNotEmitted(panel.lab_edited):
        child(panel, QCheckBox, "feature_y").setChecked(False)
    assert len(recorder.edits) == count
    error = child(panel, QLabel, "datasetError")
    assert not error.isHidden()
    assert "problem.dataset.features" in error.text()


def test_switching_to_digits_applies_a_fitting_default_model(panel, recorder):
    choose(child(panel, QComboBox, "datasetCombo"), "digits")
    lab = recorder.last
    assert lab.problem.dataset["name"] == "digits"
    expected = default_model_for((1, 8, 8), 10)
    assert lab.problem.model["layers"] == expected["layers"]
    status = child(panel, QLabel, "networkStatus")
    assert not status.isHidden() and "default" in status.text()
    n_params = validate_model(expected, (1, 8, 8), 10).n_params
    assert child(panel, QLabel, "paramCount").text() == f"{n_params:,} parameters"
    assert "1,797 images 8×8, 10 classes" in child(panel, QLabel, "datasetSummary").text()
    assert panel.diagram.block_items  # conv stages are blocks


def test_more_classes_resize_the_output_layer_only(panel, recorder):
    choose(child(panel, QComboBox, "datasetCombo"), "blobs")  # 3 classes by default
    layers = recorder.last.problem.model["layers"]
    assert layers[:-1] == network_lab().problem.model["layers"][:-1]
    assert layers[-1] == {"linear": 3}
    assert "resized" in child(panel, QLabel, "networkStatus").text()


def test_regression_offers_only_regression_losses(panel, recorder):
    choose(child(panel, QComboBox, "datasetCombo"), "sine")
    lab = recorder.last
    assert lab.problem.loss == "mse"
    assert lab.problem.model["layers"][-1] == {"linear": 1}
    combo = child(panel, QComboBox, "lossCombo")
    assert [combo.itemData(i) for i in range(combo.count())] == ["mse", "mae", "huber"]
    choose(combo, "huber")
    assert recorder.last.problem.loss == "huber"


def test_csv_picks_a_file_and_its_label_column(qtbot, tmp_path):
    (tmp_path / "iris.csv").write_text(
        "a,b,c,species\n" + "".join(f"{i},{i % 3},{i * 2},{'xyz'[i % 3]}\n" for i in range(30)),
        encoding="utf-8",
    )
    panel = NetworkProblemPanel()
    qtbot.addWidget(panel)
    panel.set_lab(replace_base(network_lab(), str(tmp_path)))
    recorder = Recorder(panel)
    with qtbot.assertNotEmitted(panel.lab_edited):
        choose(child(panel, QComboBox, "datasetCombo"), "csv")  # nothing to learn from yet
    panel.open_file_dialog = lambda *args: (str(tmp_path / "iris.csv"), "")
    child(panel, QPushButton, "csvBrowseButton").click()
    dataset = recorder.last.problem.dataset
    assert dataset == {
        "name": "csv", "path": "iris.csv", "label": "species", "val_fraction": 0.2,
    }
    assert recorder.last.problem.model["layers"][-1] == {"linear": 3}
    assert child(panel, QComboBox, "csvLabelCombo").currentText() == "species"


def replace_base(lab: Lab, base_dir: str) -> Lab:
    from dataclasses import replace

    return replace(lab, base_dir=base_dir)


# ------------------------------------------------------------------------------- training


def test_full_batch_means_batch_size_none(panel, recorder):
    full = child(panel, QCheckBox, "fullBatchCheck")
    full.setChecked(True)
    assert recorder.last.problem.batch_size is None
    assert not child(panel, QSpinBox, "batchSizeBox").isEnabled()
    full.setChecked(False)
    assert recorder.last.problem.batch_size == 64
    child(panel, QSpinBox, "batchSizeBox").setValue(32)
    assert recorder.last.problem.batch_size == 32


def test_eval_every_and_device(panel, recorder):
    child(panel, QSpinBox, "evalEveryBox").setValue(25)
    assert recorder.last.problem.eval_every == 25
    choose(child(panel, QComboBox, "deviceCombo"), "cpu")
    assert recorder.last.problem.device == "cpu"


# ------------------------------------------------------------------------------- network


def test_adding_a_linear_layer_updates_the_parameter_count(panel, recorder):
    table = child(panel, QTableWidget, "layerList")
    table.selectRow(1)  # the first ReLU
    child(panel, QPushButton, "addLayerButton").click()
    layers = recorder.last.problem.model["layers"]
    assert layers[2] == {"linear": 16}
    # 2·16+16 + 16·16+16 (new) + 16·16+16 + 16·2+2
    assert child(panel, QLabel, "paramCount").text() == "626 parameters"
    assert table.currentRow() == 2  # the new layer is selected
    table.cellWidget(2, COL_VALUE).setValue(8)
    # 48 + (16·8+8) + (8·16+16) + 34
    assert child(panel, QLabel, "paramCount").text() == "362 parameters"
    assert recorder.last.problem.model["layers"][2] == {"linear": 8}


def test_conv_on_points_shows_the_error_and_emits_nothing(panel, recorder, qtbot):
    table = child(panel, QTableWidget, "layerList")
    with qtbot.assertNotEmitted(panel.lab_edited):
        choose(table.cellWidget(2, COL_KIND), "conv2d")
    error = child(panel, QLabel, "modelError")
    assert not error.isHidden()
    assert "problem.model.layers[2].conv2d" in error.text()
    assert "image" in error.text()
    assert child(panel, QLabel, "paramCount").text() == "— parameters"
    # The refused layer stays on screen and later edits build on it...
    with qtbot.assertNotEmitted(panel.lab_edited):
        table.cellWidget(0, COL_VALUE).setValue(8)
    assert kinds(panel)[2] == "conv2d"
    assert not recorder.edits
    # ...so fixing it emits the whole draft at once.
    choose(table.cellWidget(2, COL_KIND), "linear")
    assert error.isHidden()
    assert recorder.last.problem.model["layers"][:3] == [
        {"linear": 8}, {"act": "relu"}, {"linear": 16},
    ]
    assert child(panel, QLabel, "paramCount").text() == f"{2 * 8 + 8 + 8 * 16 + 16 + 16 * 2 + 2}" \
        " parameters"


def test_remove_and_move_layers(panel, recorder):
    table = child(panel, QTableWidget, "layerList")
    table.selectRow(3)  # the second ReLU
    child(panel, QPushButton, "moveLayerUpButton").click()
    assert kinds(panel) == ["linear", "act", "act", "linear", "linear"]
    assert table.currentRow() == 2
    child(panel, QPushButton, "removeLayerButton").click()
    assert recorder.last.problem.model["layers"] == [
        {"linear": 16}, {"act": "relu"}, {"linear": 16}, {"linear": 2},
    ]


def test_activation_dropout_and_init(panel, recorder):
    table = child(panel, QTableWidget, "layerList")
    choose(table.cellWidget(1, COL_VALUE), "tanh")
    assert recorder.last.problem.model["layers"][1] == {"act": "tanh"}
    choose(table.cellWidget(3, COL_KIND), "dropout")
    assert recorder.last.problem.model["layers"][3] == {"dropout": 0.1}
    init = child(panel, QComboBox, "initCombo")
    choose(init, "xavier")
    assert recorder.last.problem.model["init"] == "xavier"
    choose(init, "normal")
    sigma = child(panel, QDoubleSpinBox, "initSigmaBox")
    assert not sigma.isHidden()
    sigma.setValue(0.5)
    assert recorder.last.problem.model["init"] == {"normal": 0.5}
    choose(init, "default")
    assert "init" not in recorder.last.problem.model


def test_panel_diagram_shows_the_initial_weights(panel):
    diagram = panel.findChild(NetworkDiagram, "networkDiagram")
    assert diagram is panel.diagram
    colors = diagram.edge_colors()
    assert len(colors) == 2 * 16 + 16 * 16 + 16 * 2
    blue = colors[:, 2] > colors[:, 0]
    assert blue.any() and (~blue).any()  # seeded init: weights of both signs


def _diagram_of_race_start(qtbot, lab: Lab) -> np.ndarray:
    """The edge colours of a diagram drawn from the weights a race of ``lab`` starts from."""
    from core.engine.network_race import NetworkRace
    from core.problems.models import linear_layers

    race = NetworkRace(lab)  # no step taken: its models hold the initial weights
    diagram = NetworkDiagram()
    qtbot.addWidget(diagram)
    names = race.data.feature_names if race.data.is_2d else None
    diagram.set_architecture(race.model_spec, input_names=names)
    diagram.set_weights([m.weight.detach().numpy() for _, m in linear_layers(race.models[0])])
    return diagram.edge_colors()


def test_panel_diagram_draws_the_weights_the_race_starts_from(qtbot, panel, recorder):
    lab = replace_seed(network_lab(), 7)
    panel.set_lab(lab)
    assert np.array_equal(panel.diagram.edge_colors(), _diagram_of_race_start(qtbot, lab))
    assert not np.array_equal(panel.diagram.edge_colors(),
                              _diagram_of_race_start(qtbot, replace_seed(lab, 8)))
    # After an edit the diagram is the new network's start, as the race of the emitted lab has it.
    child(panel, QSpinBox, "layerValue_0").setValue(8)
    assert recorder.last.problem.model["layers"][0] == {"linear": 8}
    assert np.array_equal(panel.diagram.edge_colors(), _diagram_of_race_start(qtbot, recorder.last))


def replace_seed(lab: Lab, seed: int) -> Lab:
    from dataclasses import replace

    return replace(lab, seed=seed)


# ------------------------------------------------------------------------------- diagram


def test_diagram_draws_one_item_per_neuron_and_recolours_edges(qtbot):
    diagram = NetworkDiagram()
    qtbot.addWidget(diagram)
    diagram.resize(320, 220)
    spec = validate_model({"layers": [{"linear": 16}, {"act": "relu"}, {"linear": 2}]}, (2,), 2)
    diagram.set_architecture(spec, input_names=["x", "y"])
    ellipses = [i for i in diagram.scene().items() if isinstance(i, QGraphicsEllipseItem)]
    assert len(ellipses) == 2 + 16 + 2
    assert [len(column) for column in diagram.neuron_items] == [2, 16, 2]
    assert diagram.edge_count() == 2 * 16 + 16 * 2

    before = diagram.edge_colors()
    items_before = set(diagram.scene().items())
    diagram.set_weights([np.ones((16, 2)), np.ones((2, 16))])
    positive = diagram.edge_colors()
    diagram.set_weights([-np.ones((16, 2)), -np.ones((2, 16))])
    negative = diagram.edge_colors()
    assert not np.array_equal(before, positive)
    assert not np.array_equal(positive, negative)
    assert (positive[:, 2] > positive[:, 0]).all()  # blue
    assert (negative[:, 0] > negative[:, 2]).all()  # orange
    assert set(diagram.scene().items()) == items_before  # recoloured, not re-laid out

    weights = [np.zeros((16, 2)), np.zeros((2, 16))]
    weights[0][0, 0] = 1.0
    diagram.set_weights(weights)
    widths = diagram.edge_widths()
    assert widths[0] == widths.max() > widths[1]  # the one large weight is the thickest edge


def test_diagram_caps_wide_layers_and_checks_shapes(qtbot):
    diagram = NetworkDiagram()
    qtbot.addWidget(diagram)
    spec = validate_model({"layers": [{"linear": 40}, {"act": "relu"}, {"linear": 3}]}, (5,), 3)
    diagram.set_architecture(spec)
    assert [len(column) for column in diagram.neuron_items] == [5, 16, 3]
    diagram.set_weights([np.random.default_rng(0).normal(size=(40, 5)), np.ones((3, 40))])
    with pytest.raises(ValueError, match="shape"):
        diagram.set_weights([np.ones((5, 40)), np.ones((3, 40))])
    with pytest.raises(ValueError, match="2 arrays"):
        diagram.set_weights([np.ones((40, 5))])


def test_diagram_of_a_conv_net_takes_conv_weights_too(qtbot):
    diagram = NetworkDiagram()
    qtbot.addWidget(diagram)
    model = default_model_for((1, 8, 8), 10)
    spec = validate_model(model, (1, 8, 8), 10)
    diagram.set_architecture(spec)
    assert len(diagram.block_items) == 5  # input, conv, pool, conv, pool
    conv_and_linear = [np.ones((8, 1, 3, 3)), np.ones((16, 8, 3, 3)),
                       np.ones((32, 64)), -np.ones((10, 32))]
    diagram.set_weights(conv_and_linear)
    colors = diagram.edge_colors()
    assert (colors[:, 2] > colors[:, 0]).sum() == 16 * 16  # flat 64 (16 drawn) → 32 (16 drawn)
    diagram.set_weights(conv_and_linear[2:])  # only the linear layers: accepted too
    diagram.set_architecture(None, message="nothing")
    assert diagram.neuron_count() == 0


def test_seeds_per_run_are_set_in_the_panel(qtbot):
    from PySide6.QtWidgets import QSpinBox

    from app.network.problem_panel import NetworkProblemPanel
    from core.lab.format import Lab, NetworkProblem, RunSpec

    panel = NetworkProblemPanel()
    qtbot.addWidget(panel)
    lab = Lab(name="n", steps=50, problem=NetworkProblem(device="cpu"),
              runs=(RunSpec("Adam", "adam", {"lr": 0.01}),))
    panel.set_lab(lab)
    edits = []
    panel.lab_edited.connect(lambda lab, text: edits.append(lab))
    panel.findChild(QSpinBox, "seedsBox").setValue(3)
    assert edits and edits[-1].problem.seeds == 3
