""""What is this plot?": a one-paragraph explanation for every plot of the main window.

`PLOT_HELP` holds the paragraphs, keyed by a plot's object name or, failing that, the name of its
class (or of a base class): one entry serves every instance of a plot class, and a plot class that
has no entry is caught by tests/app/test_help.py, which walks every plot of both kinds of lab.
`install_plot_help` gives each plot widget (`plot_widgets`) three ways to the paragraph:

* a small "?" button in its top-left corner, shown while the mouse is over the plot (hidden
  otherwise, so pictures and animations exported from the plots never show it);
* Qt's What's This (Help ▸ What's This?, Shift+F1, then click the plot);
* "What is this plot?" in the plot's right-click menu, where pyqtgraph gives it one.

It is idempotent and cheap; the window calls it again whenever a lab change built new views.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPoint, Qt
from PySide6.QtWidgets import QGraphicsView, QToolButton, QWhatsThis, QWidget

MENU_TEXT = "What is this plot?"
DONE = "plotHelpInstalled"  # the Qt property marking a plot that has its button and text

PLOT_HELP: dict[str, str] = {
    # -- a 2-D function race (app/arena, app/widgets/curves.py, app/runs) --
    "landscapePlot": (
        "The landscape: the test function f(x, y) drawn as filled contours (dark is low, bright "
        "is high), the known minima as stars, and every run's path from the shared start point "
        "(the white crosshair) to its current point, in the run's colour. Drag the crosshair or "
        "click the map to move the start; the wheel zooms. A path that zig-zags across a valley "
        "is near the edge of stability (its learning rate is almost too large); one that crawls "
        "along the valley floor is too cautious; an ✕ marks where a run diverged."),
    "lossPlot": (
        "Loss against step for every run: how far f(x, y) at the run's point is above the "
        "function's minimum f* (on a log axis, so the late, tiny improvements stay visible; "
        "f itself on a linear axis when f* is not known). Lower is better. A line that flattens "
        "has converged or is stuck on a plateau; one that ends early with ✕ diverged. Compare how "
        "fast the lines fall as well as where they end."),
    "lrPlot": (
        "The learning rate each run used at every step: a flat line for a constant lr, the shape "
        "of its schedule (step decay, cosine, warm-up, one-cycle…) when the run has one. Read it "
        "beside the loss: a bend in a loss curve often lines up with a change of lr here."),
    "LrPreview": (
        "A preview of the selected run's learning rate over the whole race, computed before you "
        "press Play by stepping the real torch.optim.lr_scheduler you chose. Use it to check that "
        "the warm-up, the decay steps and the final learning rate are what you meant."),
    # -- a network race (app/network) --
    "lossCurves": (
        "Training and validation loss of every run. Solid lines are the mini-batch training loss, "
        "dashed lines the loss on the validation set. Mini-batch losses are noisy, so the bold "
        "line is smoothed with the raw values faint beneath it (the smoothing slider sets how "
        "much). A validation loss that turns upward while the training loss keeps falling is "
        "overfitting; the x axis can show steps, epochs or wall time."),
    "accuracyCurves": (
        "Accuracy of every run: the share of points the network classifies correctly, on the "
        "whole training set (solid) and the validation set (dashed). A gap that keeps growing "
        "between the two means the network memorises the training points rather than learning "
        "the pattern; two optimizers can reach the same loss with different accuracy."),
    "lrCurves": (
        "The learning rate each run used for its next update, on a log axis because optimizers' "
        "rates often differ by decades (SGD 0.1, Adam 0.001). A schedule shows as its shape: "
        "steps, a cosine, a warm-up ramp."),
    "layerStatsPlot": (
        "Per layer of the selected run, one line per layer coloured by depth: the norm of the "
        "gradient (left) and the update-to-weight ratio ‖Δw‖ / ‖w‖ (right), on log axes. Gradients "
        "that shrink towards the first layers are vanishing; a ratio far above about 1e-3 means "
        "steps so large that the layer's weights are being rewritten, far below means it barely "
        "learns."),
    "DataPreview": (
        "The data set the runs train on: training points filled, validation points hollow, "
        "coloured by class (or by target value, blue low to orange high, for a regression). Look "
        "at the noise and at how the classes interleave: that is what the network has to learn "
        "to separate."),
    "networkDiagram": (
        "The network: one column of circles per layer's values (inputs on the left, outputs on "
        "the right) and one line per weight. While a race runs, the lines take the colour of the "
        "selected run's weights (sign and size), so you can watch which connections the "
        "optimizer grows and which it leaves near zero."),
    "overviewData": (
        "The data set of the race on its plane (the Overview tab, data → network → output): "
        "training points filled, validation points hollow, coloured by class. The network "
        "learns to separate these classes; the Output picture beside it shows how well it does."),
    "neuronDiagram": (
        "The network of the selected run, as TensorFlow Playground draws one: every circle is "
        "a neuron painted with its output over the data's plane (blue where positive, orange "
        "where negative, dark near zero), from the inputs x and y on the left through each "
        "hidden layer to the outputs; every line is a weight (blue positive, orange negative, "
        "thicker when larger). Watch simple stripes in the first layer combine into curved "
        "regions in the next: that is how the network bends its decision boundary. A neuron "
        "dark everywhere is dead (a ReLU that never fires)."),
    "overviewOutput": (
        "The selected run's output over the plane at its newest evaluation: for two classes "
        "its P(class 1) from blue to orange, for more the predicted class fainter where it is "
        "less sure, for a regression the predicted value; with the data's points on top. The "
        "large numbers above are the same run's epoch, training and validation loss and score."),
    "BoundariesTab": (
        "Decision boundaries, one small plot per run: the network's prediction over the plane of "
        "the two inputs (the colour is the predicted class, its strength the confidence), with "
        "the training points filled and the validation points hollow. For a regression, the "
        "fitted curve or surface. Compare how smooth each optimizer's boundary is and where it "
        "still gets points wrong."),
    "confusionPlot": (
        "The confusion matrix of the selected run on the validation set: a row per true class, "
        "a column per predicted class, each cell the number of points, coloured by its share of "
        "the row. The diagonal holds the correct answers; a bright cell off the diagonal shows "
        "which class is mistaken for which."),
    "prCurvePlot": (
        "The precision–recall curve of the selected run on the validation set (two classes): "
        "each point is one threshold on the network's P(class 1), trading recall (the share of "
        "class-1 points found) against precision (the share of its class-1 answers that are "
        "right). The dot is the threshold 0.5, the predictions the confusion matrix counts; the "
        "dashed line is a classifier that guesses. On imbalanced data it tells more than "
        "accuracy: a curve high and to the right is a good classifier."),
    "function3d": (
        "The test function as a surface in 3-D (the arena's 3-D tab): the same heights as the "
        "map's colours (f, or log₁₀(f − min) where the map uses a log scale), drawn to scale in x "
        "and y, with every run's path lying on it in the run's colour and a dot where each run is "
        "now (grey once it diverged). Drag to turn it, use the wheel to zoom. Holes are where f "
        "is undefined. It shows the shape of valleys and ridges; the Map tab gives exact "
        "positions and moves the start."),
    # -- recurrent networks (app/network/sequence_tab.py) --
    "hiddenGradPlot": (
        "How far the loss reaches back in time, for the selected run: each column is one "
        "evaluation during training, each row a time step t of the sequence, and the colour is "
        "log10 of the gradient of the loss with respect to the hidden state h_t, ‖∂L/∂h_t‖, on a "
        "fixed batch of training sequences. A map that fades towards t = 0 shows vanishing "
        "gradients (early inputs barely teach the network); one that turns bright everywhere "
        "shows them exploding. LSTMs and GRUs keep early steps bright longer than a plain RNN."),
    "spectralRadiusPlot": (
        "The spectral radius (largest eigenvalue in absolute value) of each recurrent weight "
        "matrix of the selected run over training, with the line at 1. Above 1 the hidden state "
        "can grow from step to step and gradients through time may explode; well below 1 they "
        "shrink and vanish. It is the simplest summary of why a plain RNN struggles with long "
        "sequences."),
    "clipGradPlot": (
        "The total gradient norm of the selected run before clipping, at every step (log scale), "
        "with × where norm clipping fired (the norm was above the run's clip_norm and the "
        "gradient was scaled down to it). Spikes are the 'cliffs' of a recurrent loss; clipping "
        "keeps one spike from throwing the weights far away."),
    # -- the singular values of the updates (app/network/spectra_tab.py) --
    "updateSpectraPlot": (
        "The singular values of the selected run's update ΔW of one weight matrix (the change "
        "between two steps), each divided by the largest, at every evaluation (log scale). "
        "Lines bunched near 1 mean every direction of the matrix moves by the same amount, as "
        "Muon's orthogonalised (Newton–Schulz) update does; lines fanning down mean a few "
        "directions dominate the step, as with SGD or Adam. Directions the gradient barely "
        "touches stay small even for Muon: five Newton–Schulz steps lift a value only ~500×."),
    "updateProfilePlot": (
        "Every run's update spectrum at the newest evaluation: σ_i(ΔW) / σ_1(ΔW) against i, "
        "largest first, in the runs' colours. A flat profile is an update of equal strength in "
        "every direction (Muon); a falling one is dominated by a few directions (Adam, SGD). "
        "Pick the weight matrix above the plots."),
    # -- the sweep window (app/tools/isolation_view.py) --
    "isolationPlot": (
        "The isolation plot (from Google's Deep Learning Tuning Playbook): for each value of the "
        "hyperparameter picked above it (each bin of a range, log-spaced for a log-scale one), "
        "the best objective any trial reached there, whatever the other hyperparameters were: "
        "they are optimized away, so the curve shows what this one can do at its best. Faint "
        "dots are every trial's own objective; the dashed lines are the ends of the searched "
        "range. Lower is better. A curve still falling at a dashed line says the best lies "
        "beyond it: widen the range there (a warning under the plot says so). A flat curve "
        "says this hyperparameter hardly matters within the range."),
    # -- the scorecard window (app/tools/scorecard_views.py) --
    "scorecardProfilePlot": (
        "Performance profiles: for each entry, ρ(τ) is the fraction of the workloads it reached "
        "the target on within τ times the fastest entry's steps (τ = 1: it was the fastest; a "
        "miss never counts). A curve high and to the left is an optimizer that is fast almost "
        "everywhere; a curve that stays low misses workloads. The score B in the legend is the "
        "area under the curve from τ = 1 to 4 divided by 3: 1 for an entry fastest everywhere, "
        "0 for one that misses everything. The curves fill in as studies finish."),
    "scorecardTrialsPlot": (
        "Every trial of the time selected in the table: the workload's target metric (a "
        "network's validation loss, a function's loss) against step, for each trial of that "
        "entry on that workload in every study. Each study's best trial (the fastest to the "
        "target; the one the table's time is made of) is drawn bright, the other trials faint. "
        "The dashed line is the target and the vertical line the step budget: a trial's time "
        "to target is the first step its curve is on or below the dashed line; one that never "
        "gets there before the budget is a miss. Faint curves far from the bright one say the "
        "result depends on the learning rate the search happened to try; curves that stop early "
        "diverged, or their race ended once every trial in it had reached the target. A dot "
        "marks where a best trial reached the target. The y axis is logarithmic when the values "
        "span more than a decade. Select another time to "
        "see its trials; trials stored before curves were kept draw nothing."),
    # -- the Fingerprint window (app/tools/fingerprint_views.py) --
    "fingerprintScalePlot": (
        "Scale invariance: the optimizer runs on f and on c·f (c = 10 and 0.1) from the same "
        "start, and each line is the distance between the two paths at every step, divided by "
        "how far the path on f moved (log axis). A line far below the dashed green level (1e-6) "
        "means multiplying the loss by c changes nothing: Adam-type and sign methods, whose "
        "step ignores the gradient's size. A line near 1 means the path changed: gradient "
        "descent, whose step is c times larger. Adam's lines may climb past the dashed level "
        "and still be called invariant: its ε weighs c times less on c·f, and the probe checks "
        "that the run on c·f is exactly the run on f with ε/c (the table says so). Lines at the "
        "bottom edge are exactly 0."),
    "fingerprintUpdatePlot": (
        "How large each step of a 50-step run on the probe's quadratic is. 'update RMS / lr' is "
        "the root-mean-square change of the coordinates in units of lr: about 1 for Adam-type "
        "methods and exactly 1 for sign methods. 'effective step' is ‖Δθ‖/(lr·‖g‖), the step "
        "against what plain gradient descent would take: 1 for gradient descent, rising toward "
        "1/(1 − β) with momentum β, about 1/RMS(g) for Adam-type methods."),
    "fingerprintStabilityPlot": (
        "How the largest stable learning rate was found: every lr the search tried on "
        "½·λ·‖x‖², in order (log axis). Green points stayed bounded, red ones blew up; the "
        "search first steps by ×10 until it brackets the edge, then bisects the bracket until it "
        "is 0.001 % wide. The dashed orange line is theory where there is one: 2/λ for gradient "
        "descent, (2 + 2β)/λ for heavy-ball momentum. Adam-type methods stay green up to the "
        "search's top: their step is about lr whatever the curvature."),
    # -- the loss surface of a trained network (app/surface) --
    "SurfacePlot": (
        "The loss surface around the trained weights: the loss on a plane through weight space "
        "(spanned by two directions, such as filter-normalised random ones or the principal "
        "directions of the runs' paths), as a heatmap with contour lines, and each run's path "
        "projected onto that plane. The plane is only a slice: hover a path point to compare its "
        "true loss with the surface's value under it."),
    "SlicePlot": (
        "The loss along straight lines through weight space: from the initial weights to each "
        "run's weights, from one run to another, or along a random direction around each run. "
        "A barrier between two runs means they ended in different valleys; a wide, flat curve "
        "around a run means a flat minimum, a narrow one a sharp minimum."),
    "SharpnessPlot": (
        "Sharpness: the largest eigenvalue of the loss's Hessian (its steepest curvature) along "
        "each run, measured with Lanczos iterations on Hessian-vector products. Plain gradient "
        "descent is stable only while sharpness stays below 2 / lr, the dashed line in the run's "
        "colour; training often pushes sharpness up to that edge and hovers there."),
    "surface3d": (
        "The same loss surface in 3-D, with the runs' paths lying on it, coloured as on the 2-D "
        "map. Drag to turn it, use the wheel to zoom. Heights are the loss (or its log) scaled to "
        "fit; it shows the shape of the valleys, and the 2-D map gives exact numbers."),
}


def help_key(widget: QWidget) -> str | None:
    """The `PLOT_HELP` key of ``widget``: its object name, else its class or a base class."""
    if widget.objectName() in PLOT_HELP:
        return widget.objectName()
    for cls in type(widget).__mro__:
        if cls.__name__ in PLOT_HELP:
            return cls.__name__
    return None


def help_text(widget: QWidget) -> str:
    """The paragraph for ``widget`` or for the plot it is part of ("" if none is known)."""
    while widget is not None:
        key = help_key(widget)
        if key is not None:
            return PLOT_HELP[key]
        widget = widget.parentWidget()
    return ""


def plot_widgets(root: QWidget) -> list[QWidget]:
    """Every plot under ``root``: the pyqtgraph views (and the network diagram, a graphics view)
    and the 3-D views, but not the GL widget inside a 3-D view (the view is the plot)."""
    return [*root.findChildren(QGraphicsView), *root.findChildren(QWidget, "surface3d"),
            *root.findChildren(QWidget, "function3d")]


class _HelpButton(QToolButton):
    """The "?" in a plot's corner: shows the paragraph where the plot is."""

    def __init__(self, plot: QWidget):
        super().__init__(plot)
        self.setObjectName("plotHelpButton")
        self.setText("?")
        self.setToolTip(MENU_TEXT)
        self.setCursor(Qt.CursorShape.WhatsThisCursor)
        self.setAutoRaise(True)
        self.setFixedSize(20, 20)
        self.setStyleSheet("QToolButton { font-weight: bold; border-radius: 10px;"
                           " background: rgba(128, 128, 128, 90); }")
        self.move(4, 4)
        self.hide()
        self.clicked.connect(self.show_help)

    def show_help(self) -> None:
        plot = self.parentWidget()
        QWhatsThis.showText(plot.mapToGlobal(QPoint(8, 28)), help_text(plot), plot)


class _HoverShow(QObject):
    """Shows a plot's "?" button while the mouse is over the plot."""

    def __init__(self, plot: QWidget, button: _HelpButton):
        super().__init__(plot)
        self.button = button
        plot.installEventFilter(self)

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt's name
        kind = event.type()
        if kind == QEvent.Type.Enter:
            self.button.show()
            self.button.raise_()
        elif kind == QEvent.Type.Leave:
            self.button.hide()
        return False


def _add_menu_entries(plot: QWidget) -> None:
    """"What is this plot?" in the right-click menu of each pyqtgraph plot item in ``plot``."""
    items = []
    if isinstance(plot, pg.PlotWidget):
        items = [plot.getPlotItem()]
    elif isinstance(plot, pg.GraphicsLayoutWidget):
        items = [i for i in plot.ci.items if isinstance(i, pg.PlotItem)]
    for item in items:
        menu = getattr(item.getViewBox(), "menu", None)
        if menu is None or getattr(item, "_plot_help_entry", False):
            continue
        item._plot_help_entry = True
        action = menu.addAction(MENU_TEXT)
        action.triggered.connect(
            lambda _=False, p=plot: QWhatsThis.showText(p.mapToGlobal(QPoint(8, 28)),
                                                        help_text(p), p))


def install_plot_help(root: QWidget) -> list[QWidget]:
    """Give every plot under ``root`` its paragraph (idempotent, and quick for the plots that
    have it: it runs after every lab edit); returns the plots seen."""
    plots = plot_widgets(root)
    for plot in plots:
        if plot.property(DONE):
            if isinstance(plot, pg.GraphicsLayoutWidget):  # its plot items may be new ones
                _add_menu_entries(plot)
            continue
        text = help_text(plot)
        if not text:
            continue  # a plot with no paragraph yet: tests/app/test_help.py names it
        _add_menu_entries(plot)
        plot.setWhatsThis(text)
        _HoverShow(plot, _HelpButton(plot))
        plot.setProperty(DONE, True)
    return plots
