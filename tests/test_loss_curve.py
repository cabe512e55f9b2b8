"""The training loss curve (tutorials_common.plots.smoothed, draw_loss) the
CIFAR-10 notebook draws: the batch loss and its smoothing, which starts at
the first loss instead of climbing from 0 as the tutorial's moving average
of the loss does."""
import numpy as np
import pytest

from tutorials_common import plots

pytest.importorskip('matplotlib', reason="pip install -e '.[test]'")
from matplotlib.figure import Figure  # noqa: E402


def test_the_smoothing_is_tensorboards_and_starts_at_the_first_value():
  assert plots.smoothed([]) == []
  assert plots.smoothed([2.5]) == [2.5]
  np.testing.assert_allclose(plots.smoothed([3.0] * 20), [3.0] * 20)
  # The average of the values so far, each weighted 0.6 ** its age.
  np.testing.assert_allclose(plots.smoothed([4.0, 2.0]),
                             [4.0, (0.6 * 4 + 2) / 1.6])
  np.testing.assert_allclose(plots.smoothed([4.0, 2.0], weight=0),
                             [4.0, 2.0])


def test_a_falling_loss_gives_a_falling_curve():
  rng = np.random.RandomState(0)
  losses = np.sort(rng.uniform(1, 5, 50))[::-1]
  smooth = plots.smoothed(losses, weight=0.9)
  assert smooth[0] == losses[0]
  assert all(b <= a for a, b in zip(smooth, smooth[1:]))


def test_the_loss_panel_has_labelled_axes_and_legend():
  steps, losses = [0, 10, 20, 30], [4.6, 3.9, 4.1, 3.2]
  ax = Figure().subplots()
  plots.draw_loss(ax, steps, losses, ylabel='total loss')
  batch, smooth = ax.get_lines()
  assert list(batch.get_xdata()) == steps == list(smooth.get_xdata())
  assert list(batch.get_ydata()) == losses
  np.testing.assert_allclose(smooth.get_ydata(), plots.smoothed(losses))
  assert smooth.get_ydata()[0] == losses[0]
  assert batch.get_alpha() < 1 and smooth.get_alpha() in (None, 1)
  assert ax.get_xlabel() == 'training step'
  assert ax.get_ylabel() == 'total loss'
  assert [t.get_text() for t in ax.get_legend().get_texts()] == [
      'batch loss', 'batch loss, smoothed']
