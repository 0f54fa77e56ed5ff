"""Tests of ebmlab.plotting and ebmlab.widgets against closed forms.

The Agg backend is selected here (not through MPLBACKEND) so the tests never open a window.
"""

from __future__ import annotations

import base64
import io
import math
import re
import subprocess
import sys
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.quiver import Quiver
from PIL import Image

from ebmlab import plotting as P
from ebmlab.energies import Energy, EnergyFunction, GaussianMixture

A = torch.tensor([[2.0, 0.6], [0.6, 1.0]], dtype=torch.float64)  # precision of a Gaussian
BOUNDS = ((-6.0, 6.0), (-6.0, 6.0))


def quadratic(x: torch.Tensor) -> torch.Tensor:
    """E(x) = ½ xᵀAx, a plain callable; density N(0, A⁻¹)."""
    return 0.5 * torch.einsum("bi,ij,bj->b", x, A.to(x), x)


def standard(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (x**2).sum(dim=1)


MIX_MEANS = np.array([[-2.0, 0.0], [2.0, 1.0]])
MIX_STD = 0.6
MIX_W = np.array([0.3, 0.7])


def mixture_density_np(x: np.ndarray) -> np.ndarray:
    """Closed-form density of the isotropic two-component mixture (independent of ebmlab)."""
    d2 = ((x[:, None, :] - MIX_MEANS[None]) ** 2).sum(-1)
    comp = np.exp(-0.5 * d2 / MIX_STD**2) / (2 * math.pi * MIX_STD**2)
    return comp @ MIX_W


def make_mixture() -> GaussianMixture:
    return GaussianMixture(torch.tensor(MIX_MEANS), torch.full((2,), MIX_STD, dtype=torch.float64),
                           torch.tensor(MIX_W))


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _colorbar_label(ax) -> str:
    (cax,) = ax.child_axes  # the colorbar sits in an inset axes at the right
    return cax.get_ylabel()


# ---------------------------------------------------------------------------- grids


def test_energy_grid_matches_closed_form_and_orientation():
    X, Y, E = P.energy_grid(lambda x: x[:, 0] + 10 * x[:, 1], ((0, 1), (0, 2)), (5, 3),
                            dtype=torch.float64)
    assert X.shape == Y.shape == E.shape == (3, 5)  # (ny, nx)
    np.testing.assert_allclose(X[0], np.linspace(0, 1, 5))
    np.testing.assert_allclose(Y[:, 0], np.linspace(0, 2, 3))
    np.testing.assert_allclose(E, X + 10 * Y, atol=1e-12)


def test_energy_grid_chunks_without_grad_and_uses_module_dtype():
    seen: list[tuple[int, bool, torch.dtype]] = []

    class Probe(Energy):
        def __init__(self):
            super().__init__()
            self.register_buffer("scale", torch.tensor(0.5, dtype=torch.float64))

        def forward(self, x):
            seen.append((x.shape[0], torch.is_grad_enabled(), x.dtype))
            return self.scale * (x**2).sum(1)

    *_, E = P.energy_grid(Probe(), BOUNDS, 10, chunk_size=33)
    assert [n for n, _, _ in seen] == [33, 33, 33, 1]
    assert not any(g for _, g, _ in seen)
    assert all(dt == torch.float64 for *_, dt in seen)
    assert E.dtype == np.float64


def test_density_grid_normalised_and_matches_gaussian_peak():
    # Odd resolution puts the mode on a node. The peak of N(0, Σ) is 1/(2π sqrt(det Σ)).
    *_, D = P.density_grid(quadratic, BOUNDS, 121, dtype=torch.float64)
    cell = (12 / 120) ** 2
    assert D.sum() * cell == pytest.approx(1.0, rel=1e-12)
    assert D.max() == pytest.approx(math.sqrt(torch.linalg.det(A)) / (2 * math.pi), rel=1e-3)
    # Temperature T scales the covariance by T: the peak of N(0, T I) is 1/(2π T).
    *_, D2 = P.density_grid(standard, BOUNDS, 121, temperature=2.0)
    assert D2.max() == pytest.approx(1 / (4 * math.pi), rel=1e-3)


def test_density_grid_matches_mixture_everywhere():
    mixture = make_mixture()
    X, Y, D = P.density_grid(mixture, ((-6, 6), (-5, 6)), 150, dtype=torch.float64)
    ref = mixture_density_np(np.stack([X.ravel(), Y.ravel()], 1)).reshape(X.shape)
    np.testing.assert_allclose(D, ref, atol=1e-4 * ref.max())


def test_density_grid_1d():
    x, D = P.density_grid(lambda x: 0.5 * x[:, 0] ** 2, (-8, 8), 401)
    assert x.shape == D.shape == (401,)
    assert D.max() == pytest.approx(1 / math.sqrt(2 * math.pi), rel=1e-3)


def test_validation_errors():
    with pytest.raises(ValueError, match="bounds is required"):
        P.energy_grid(standard)
    with pytest.raises(ValueError, match="min < max"):
        P.energy_grid(standard, ((1, 0), (0, 1)))
    with pytest.raises(ValueError, match="bounds must be"):
        P.energy_grid(standard, ((0, 1, 2), (0, 1, 2)))
    with pytest.raises(ValueError, match="resolution"):
        P.energy_grid(standard, BOUNDS, 1)
    with pytest.raises(ValueError, match="energies of shape"):
        P.energy_grid(lambda x: x, BOUNDS, 5)
    with pytest.raises(TypeError, match="energy must be callable"):
        P.energy_grid(3.0, BOUNDS, 5)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        P.density_grid(standard, BOUNDS, 5, temperature=0.0)
    with pytest.raises(ValueError, match="NaN"):
        P.density_grid(lambda x: x[:, 0] * float("nan"), BOUNDS, 5)


def test_bounds_default_to_energy_attribute():
    energy = EnergyFunction(standard)
    energy.bounds = ((-1.0, 1.0), (-2.0, 2.0))
    ax = P.plot_energy(energy, resolution=20)
    assert ax.get_xlim() == (-1.0, 1.0) and ax.get_ylim() == (-2.0, 2.0)


# ---------------------------------------------------------------------------- drawing


@pytest.mark.parametrize("which", ["quadratic", "mixture"])
def test_plot_energy_and_density(which):
    energy = quadratic if which == "quadratic" else make_mixture()
    ax = P.plot_energy(energy, BOUNDS, resolution=40)
    assert _colorbar_label(ax) == "energy $E(x)$"
    _, axes = plt.subplots(1, 2)
    P.plot_density(energy, BOUNDS, resolution=41, ax=axes[0])
    assert _colorbar_label(axes[0]) == "density $p(x)$"
    mesh = axes[0].collections[0]
    dx = 12 / 40
    assert np.asarray(mesh.get_array()).sum() * dx * dx == pytest.approx(1.0, rel=1e-6)
    P.plot_energy_surface_3d(energy, BOUNDS, resolution=20)


def test_plot_energy_clip_and_1d():
    ax = P.plot_energy(standard, BOUNDS, resolution=30, clip=3.0, levels=7)
    assert ax.collections[0].zmax == pytest.approx(3.0)
    ax = P.plot_energy(lambda x: x[:, 0] ** 2, (-2, 2), resolution=30)
    line = ax.lines[0]
    np.testing.assert_allclose(line.get_ydata(), line.get_xdata() ** 2, atol=1e-6)
    P.plot_density(lambda x: x[:, 0] ** 2, (-2, 2), resolution=30)


def test_plot_energy_surface_needs_3d_axes():
    _, ax = plt.subplots()
    with pytest.raises(ValueError, match="3-D Axes"):
        P.plot_energy_surface_3d(standard, BOUNDS, ax=ax)


def _quiver(ax) -> Quiver:
    return next(c for c in ax.collections if isinstance(c, Quiver))


def test_score_field_equals_minus_gradient():
    ax = P.plot_score_field(quadratic, BOUNDS, n_arrows=(7, 5), dtype=torch.float64)
    q = _quiver(ax)
    pts = np.stack([q.X.ravel(), q.Y.ravel()], 1)
    assert pts.shape == (35, 2)
    expected = -pts @ A.numpy().T  # s(x) = -∇E = -A x
    np.testing.assert_allclose(np.c_[q.U.ravel(), q.V.ravel()], expected, atol=1e-10)
    # Passing the score itself gives the same arrows, with no background.
    ax2 = P.plot_score_field(score=lambda x: -x @ A.to(x).T, bounds=BOUNDS, n_arrows=(7, 5))
    q2 = _quiver(ax2)
    np.testing.assert_allclose(q2.U, q.U, atol=1e-5)
    assert len(ax2.collections) == 1
    # Unit arrows keep the direction.
    q3 = _quiver(P.plot_score_field(quadratic, BOUNDS, n_arrows=6, normalize=True,
                                    background="density"))
    norms = np.hypot(q3.U, q3.V)
    assert np.allclose(norms[norms > 0], 1.0)


def test_score_field_arrows_contrast_with_the_background():
    # Over viridis, low energies are dark purple and high ones yellow: arrows in the
    # lowest tenth of the colour range are white, those in the highest tenth black.
    q = _quiver(P.plot_score_field(standard, BOUNDS, n_arrows=9, clip=20.0))
    energies = 0.5 * (q.X.ravel() ** 2 + q.Y.ravel() ** 2)
    colors = [to_hex(c) for c in q.get_facecolors()]
    assert len(colors) == energies.size == 81
    low, high = energies < 2.0, energies > 18.0
    assert low.sum() >= 1 and high.sum() >= 8
    colors = np.array(colors)
    assert set(colors[low]) == {"#ffffff"}
    assert set(colors[high]) == {P.PALETTE["reference"]}
    # One colour when asked for, black arrows without a background.
    q = _quiver(P.plot_score_field(standard, BOUNDS, n_arrows=5, color="red"))
    assert {to_hex(c) for c in q.get_facecolors()} == {"#ff0000"}
    q = _quiver(P.plot_score_field(standard, BOUNDS, n_arrows=5, background=None))
    assert {to_hex(c) for c in q.get_facecolors()} == {P.PALETTE["reference"]}


def test_score_field_of_mixture_uses_its_score():
    mixture = make_mixture()
    q = _quiver(P.plot_score_field(mixture, BOUNDS, n_arrows=4, background=None,
                                   dtype=torch.float64))
    pts = np.stack([q.X.ravel(), q.Y.ravel()], 1)
    # Closed form: s(x) = Σ_k r_k(x) (μ_k - x) / σ², r_k the responsibilities.
    d2 = ((pts[:, None] - MIX_MEANS[None]) ** 2).sum(-1)
    r = MIX_W * np.exp(-0.5 * (d2 - d2.min(1, keepdims=True)) / MIX_STD**2)
    r /= r.sum(1, keepdims=True)
    expected = (r[:, :, None] * (MIX_MEANS[None] - pts[:, None])).sum(1) / MIX_STD**2
    np.testing.assert_allclose(np.c_[q.U.ravel(), q.V.ravel()], expected, atol=1e-8)


def test_score_field_errors():
    with pytest.raises(ValueError, match="exactly one"):
        P.plot_score_field(bounds=BOUNDS)
    with pytest.raises(ValueError, match="exactly one"):
        P.plot_score_field(quadratic, BOUNDS, score=lambda x: -x)
    with pytest.raises(ValueError, match="needs energy"):
        P.plot_score_field(score=lambda x: -x, bounds=BOUNDS, background="energy")
    with pytest.raises(ValueError, match="same shape"):
        P.plot_score_field(score=lambda x: x[:, 0], bounds=BOUNDS)


def test_plot_samples_colours_and_errors():
    x = torch.randn(50, 2, generator=torch.Generator().manual_seed(0))
    ax = P.plot_samples(x, kind="data")
    P.plot_samples(x + 1, kind="model", ax=ax)
    data, model = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert to_hex(data.get_facecolor()[0]) == P.PALETTE["data"].lower()
    assert to_hex(model.get_facecolor()[0]) == P.PALETTE["model"].lower()
    np.testing.assert_allclose(model.get_offsets(), (x + 1).numpy(), atol=1e-6)
    assert ax.get_legend_handles_labels()[1] == ["data", "model samples"]
    P.plot_samples(x[:, 0], kind="data")  # 1-D: a histogram
    with pytest.raises(ValueError, match="kind must be one of"):
        P.plot_samples(x, kind="nope")
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        P.plot_samples(torch.zeros(4, 3))


def test_plot_chains():
    traj = torch.cumsum(torch.randn(30, 20, 2, generator=torch.Generator().manual_seed(1)), 0)
    ax = P.plot_chains(traj, n_chains=5)
    lines = next(c for c in ax.collections if isinstance(c, LineCollection))
    segs = lines.get_segments()
    assert len(segs) == 5 and segs[0].shape == (30, 2)
    np.testing.assert_allclose(segs[0], traj[:, 0].numpy(), atol=1e-6)  # first chain included
    np.testing.assert_allclose(segs[-1], traj[:, -1].numpy(), atol=1e-6)  # last chain included
    with pytest.raises(ValueError, match=r"\(T, B, 2\)"):
        P.plot_chains(torch.zeros(3, 2))


def test_tile_images_layout():
    imgs = np.arange(7 * 5 * 4, dtype=float).reshape(7, 5, 4)
    tiled = P.tile_images(imgs, nrow=3, normalize=None, padding=1)
    assert tiled.shape == (3 * 6 - 1, 3 * 5 - 1)
    np.testing.assert_array_equal(tiled[0:5, 5:9], imgs[1])  # row 0, column 1
    np.testing.assert_array_equal(tiled[12:17, 0:4], imgs[6])  # row 2, column 0
    assert np.isnan(tiled[5]).all() and np.isnan(tiled[:, 4]).all()  # padding
    assert np.isnan(tiled[12:17, 5:]).all()  # empty slots
    flat = P.tile_images(torch.tensor(imgs).reshape(7, 20), image_shape=(5, 4), nrow=3,
                         normalize=None)
    np.testing.assert_array_equal(np.nan_to_num(flat, nan=-1), np.nan_to_num(tiled, nan=-1))
    each = P.tile_images(imgs, nrow=7, normalize="each", padding=0)
    for k in range(7):
        tile = each[:, 4 * k:4 * k + 4]
        assert tile.min() == 0.0 and tile.max() == 1.0
    glob = P.tile_images(imgs, nrow=7, normalize="all", padding=0)
    assert glob[0, 0] == 0.0 and glob[-1, -1] == 1.0


def test_image_grid_and_errors():
    filters = torch.randn(64, 12, generator=torch.Generator().manual_seed(0))  # RBM weight
    ax = P.image_grid(filters.T, image_shape=(8, 8), nrow=4, normalize="each", title="filters")
    assert ax.images[0].get_array().shape == (3 * 9 - 1, 4 * 9 - 1)
    assert ax.get_title() == "filters"
    with pytest.raises(ValueError, match="image_shape"):
        P.tile_images(torch.zeros(3, 10))
    with pytest.raises(ValueError, match="does not match"):
        P.tile_images(torch.zeros(3, 10), image_shape=(3, 3))
    with pytest.raises(ValueError, match="normalize"):
        P.tile_images(torch.zeros(3, 2, 2), normalize="max")


def test_animate_chains_frames_and_size():
    g = torch.Generator().manual_seed(0)
    traj = 0.3 * torch.cumsum(torch.randn(200, 300, 2, generator=g), 0).clamp(-5, 5)
    before = plt.get_fignums()
    anim = P.animate_chains(traj, energy=make_mixture(), bounds=BOUNDS, max_frames=80)
    assert plt.get_fignums() == before  # no pyplot figure: a notebook shows it only once
    assert len(anim.frame_indices) == 80
    assert anim.frame_indices[0] == 0 and anim.frame_indices[-1] == 199
    html = anim.to_jshtml()
    assert html.count("data:image/jpeg;base64") == 80
    assert len(html.encode()) < 2 * 1024**2
    short = P.animate_chains(traj[:10], max_frames=80, background="energy")
    assert list(short.frame_indices) == list(range(10))
    assert short.to_jshtml().count("data:image/jpeg;base64") == 10


@pytest.mark.parametrize("dpi", [100, 110, 150])
def test_animate_chains_frames_keep_their_labels_inside(dpi):
    # The landscape, colorbar and labels are drawn once into a bitmap under the moving
    # chains; nothing of it may be cut at the frame's edges (the colorbar's label was,
    # before the layout was settled). Checked at the resolutions the book uses.
    bounds = ((-5.2, 5.2), (-4.2, 5.2))
    anim = P.animate_chains(torch.zeros(3, 4, 2), energy=make_mixture(), bounds=bounds,
                            dpi=dpi, figsize=(5.0, 4.0))
    html = anim.to_jshtml()
    first = re.search(r"data:image/jpeg;base64,([^\"]+)\"", html).group(1)
    frame = np.asarray(Image.open(io.BytesIO(base64.b64decode(
        first.replace("\\n", "").replace("\n", "")))).convert("L"))
    assert frame.shape == (4 * dpi, 5 * dpi)
    for edge in (frame[:, 0], frame[:, -1], frame[0], frame[-1]):
        assert edge.min() > 220, "something is drawn up to the frame's edge"


def test_learning_curves_palette():
    ax = P.plot_learning_curves({"MLE": [3, 2, 1], "CD-1": torch.tensor([3.0, 2.5, 2.2]),
                                 "pcd": np.array([3, 2.1, 1.2]), "other": [1, 1, 1]},
                                reference=1.0, ylabel="NLL (nats)")
    colours = [to_hex(line.get_color()) for line in ax.lines]
    assert colours[:3] == [P.PALETTE[k].lower() for k in ("mle", "cd1", "pcd")]
    ref = ax.lines[-1]
    assert ref.get_linestyle() == "--" and list(ref.get_ydata()) == [1.0, 1.0]
    assert ax.get_ylabel() == "NLL (nats)"
    assert P.method_color("CD_10") == P.PALETTE["cd10"]
    assert P.method_color("other") == P.method_color("other")
    with pytest.raises(TypeError, match="histories"):
        P.plot_learning_curves([1, 2])


def test_small_multiples():
    calls = []
    fig = P.small_multiples(lambda v, ax: calls.append((v, ax)), [1, 2, 3, 4, 5], ncols=3,
                            titles=lambda v: f"v={v}")
    assert isinstance(fig, Figure) and len(fig.axes) == 6
    assert [v for v, _ in calls] == [1, 2, 3, 4, 5]
    assert [ax.get_title() for _, ax in calls] == [f"v={v}" for v in range(1, 6)]
    assert not fig.axes[5].axison
    with pytest.raises(ValueError, match="at least one"):
        P.small_multiples(lambda v, ax: None, [])


def test_use_style_sets_rcparams():
    with matplotlib.rc_context():
        P.use_style()
        assert matplotlib.rcParams["figure.dpi"] == 110
        assert matplotlib.rcParams["figure.figsize"] == [7.0, 4.2]
    assert set(P.PALETTE) >= {"data", "model", "chains", "reference", "mle", "cd1", "cd10", "pcd",
                              "sm", "ssm", "dsm", "ncsn"}


def test_constants_keep_their_doc_comments_on_the_api_page():
    """The API page documents ebmlab.plotting, whose own source must carry the constants'
    ``#:`` comments (Sphinx reads no other module's), the same as where they are defined."""
    pycode = pytest.importorskip("sphinx.pycode")
    package = pycode.ModuleAnalyzer.for_module("ebmlab.plotting").find_attr_docs()
    style = pycode.ModuleAnalyzer.for_module("ebmlab.plotting.style").find_attr_docs()
    for name in ("PALETTE", "ENERGY_CMAP", "DENSITY_CMAP"):
        assert package[("", name)] == style[("", name)], name


# ---------------------------------------------------------------------------- widgets


def test_import_ebmlab_does_not_import_ipywidgets():
    code = ("import sys, ebmlab, ebmlab.plotting; "
            "assert 'ipywidgets' not in sys.modules, 'ipywidgets imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def _scatter_offsets(ax) -> np.ndarray:
    return next(c for c in ax.collections if isinstance(c, PathCollection)).get_offsets()


def test_temperature_explorer_and_static_figure():
    from ebmlab import widgets

    mixture = make_mixture()
    w = widgets.temperature_explorer(mixture, BOUNDS, resolution=30)
    slider = w.children[0]
    slider.value = 2.0
    fig = w.result
    assert isinstance(fig, Figure)
    assert fig.axes[0].get_title() == "$T = 2$"
    assert _colorbar_label(fig.axes[0]) == "density $p(x)$"
    static = widgets.static_temperature_figure(mixture, BOUNDS, [0.5, 2.0], resolution=30)
    panels = [ax for ax in static.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["$T = 0.5$", "$T = 2$"]
    # Same drawing function: the widget's panel equals the static panel at T = 2.
    np.testing.assert_allclose(panels[1].collections[0].get_array(),
                               fig.axes[0].collections[0].get_array())


def test_langevin_explorer_and_static_figure():
    from ebmlab import widgets

    w = widgets.langevin_explorer(quadratic, BOUNDS, n_chains=40, max_steps=100, resolution=20)
    step, steps = w.children[:2]
    step.value, steps.value = 0.1, 30
    fig = w.result
    assert isinstance(fig, Figure)
    assert fig.axes[0].get_title() == r"$\epsilon = 0.1$, 30 steps"
    offsets = _scatter_offsets(fig.axes[0])
    assert offsets.shape == (40, 2)
    static = widgets.static_langevin_figure(quadratic, BOUNDS, step_sizes=[0.1], n_steps=[5, 30],
                                            n_chains=40, resolution=20)
    panels = [ax for ax in static.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == [r"$\epsilon = 0.1$, 5 steps",
                                                 r"$\epsilon = 0.1$, 30 steps"]
    np.testing.assert_allclose(_scatter_offsets(panels[1]), offsets)  # same start, same noise
    with pytest.raises(ValueError, match="step_range"):
        widgets.langevin_explorer(quadratic, BOUNDS, step_range=(1.0, 0.1))


def test_animation_saves_without_layout_warnings_under_the_book_style():
    """use_style turns constrained layout on; saving frames must not warn on every frame."""
    g = torch.Generator().manual_seed(1)
    traj = torch.randn(20, 30, 2, generator=g)
    with plt.rc_context():
        P.use_style()
        anim = P.animate_chains(traj, energy=make_mixture(), bounds=BOUNDS, max_frames=5)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            html = anim.to_jshtml()
    assert html.count("data:image/jpeg;base64") == 5
    assert "http://" not in html and "https://" not in html  # works offline: no CDN links
    assert "@media (max-width: 520px)" in html  # the player's buttons fit a phone
