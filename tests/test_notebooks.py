"""The notebooks run top to bottom in a real kernel, and the DrawDigit widget's
Python side.

notebooks/mnist_deep.ipynb and notebooks/cifar10_tutorial.ipynb run headless
with nbclient on tiny generated data, their first cell's knobs set by
environment variables (a few steps, temp folders): no error output, and the
pictures they promise. Needs the notebook extra (pip install -e
'.[notebook]'); without it these tests are skipped. The notebook runs are
marked `notebook` (python -m pytest -m notebook runs only them). Nothing is
downloaded.
"""
import os
import re

import numpy as np
import pytest

import cifar_fixtures
import mnist_fixtures
from cifar_fixtures import REPO_ROOT
import suite_helpers

NOTEBOOK_EXTRA = "the notebook extra is not installed: pip install -e '.[notebook]'"
suite_helpers.skip_unless_installed(
    ['nbclient', 'nbformat', 'ipykernel', 'anywidget', 'ipywidgets',
     'matplotlib'],
    NOTEBOOK_EXTRA)
import nbclient  # noqa: E402
import nbformat  # noqa: E402

from mnist_cnn import canvas  # noqa: E402  (anywidget: the notebook extra)
from mnist_cnn import images  # noqa: E402
from mnist_cnn import model as mnist_model  # noqa: E402

NOTEBOOKS = os.path.join(REPO_ROOT, 'notebooks')


def execute(name, env, timeout=240):
  """The notebook, run top to bottom in a fresh python3 kernel started with
  env (in notebooks/, as Jupyter runs it)."""
  notebook = nbformat.read(os.path.join(NOTEBOOKS, name), as_version=4)
  kernel_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONUNBUFFERED='1',
                    MPLBACKEND='module://matplotlib_inline.backend_inline',
                    PYTHONPATH=os.pathsep.join(
                        [REPO_ROOT, os.environ.get('PYTHONPATH', '')]))
  kernel_env.update(env)
  client = nbclient.NotebookClient(
      notebook, timeout=timeout, kernel_name='python3',
      resources={'metadata': {'path': NOTEBOOKS}})
  client.execute(env=kernel_env)
  return notebook


def outputs(notebook):
  return [output for cell in notebook.cells if cell.cell_type == 'code'
          for output in cell.outputs]


def text_of(notebook):
  return ''.join(output.get('text', '') + output.get('data', {}).get(
      'text/plain', '') for output in outputs(notebook))


def pictures(notebook):
  return [output for output in outputs(notebook)
          if 'image/png' in output.get('data', {})]


def assert_ran_cleanly(notebook):
  errors = [output for output in outputs(notebook)
            if output.output_type == 'error']
  assert not errors, '%s: %s' % (errors[0].ename, errors[0].evalue)
  assert 'Traceback' not in text_of(notebook)
  assert all(cell.execution_count for cell in notebook.cells
             if cell.cell_type == 'code')


def test_notebooks_use_no_ipython_notebook_javascript():
  """JupyterLab and Notebook 7 have no `IPython.notebook`: nothing uses it."""
  for name in os.listdir(NOTEBOOKS):
    if name.endswith('.ipynb'):
      notebook = nbformat.read(os.path.join(NOTEBOOKS, name), as_version=4)
      for cell in notebook.cells:
        if cell.cell_type == 'code':
          assert 'IPython.notebook' not in cell.source, name
  for name in ('canvas.py', 'canvas.js'):
    with open(os.path.join(REPO_ROOT, 'mnist_cnn', name)) as f:
      assert not re.search(r'IPython\.notebook\.[\w.]+\s*\(', f.read()), name


def test_first_cells_are_the_knobs():
  for name, knobs in (('mnist_deep.ipynb', ['STEPS', 'DATA_DIR',
                                            'CHECKPOINT_DIR']),
                      ('cifar10_tutorial.ipynb', ['MAX_STEPS', 'DATA_DIR',
                                                  'TRAIN_DIR', 'PICTURE'])):
    notebook = nbformat.read(os.path.join(NOTEBOOKS, name), as_version=4)
    first = [c for c in notebook.cells if c.cell_type == 'code'][0]
    assert 'parameters' in first.metadata.get('tags', []), name
    for knob in knobs:
      assert '\n%s = ' % knob in '\n' + first.source, (name, knob)
    assert not any(c.get('outputs') for c in notebook.cells), (
        '%s is committed with outputs' % name)


@pytest.fixture(scope='module')
def mnist_notebook(tmp_path_factory):
  root = tmp_path_factory.mktemp('mnist_notebook')
  env = dict(MNIST_DATA_DIR=mnist_fixtures.write_mnist(
                 root / 'data', num_train=300, num_test=100),
             MNIST_CHECKPOINT_DIR=str(root / 'checkpoints'),
             MNIST_LOG_DIR=str(root / 'logs'), MNIST_STEPS='20',
             MNIST_EVAL_EVERY='10')
  return dict(env, notebook=execute('mnist_deep.ipynb', env))


@pytest.mark.notebook
def test_mnist_notebook_trains_and_shows_accuracy_widget_bars_and_maps(
    mnist_notebook):
  notebook = mnist_notebook['notebook']
  assert_ran_cleanly(notebook)
  text = text_of(notebook)
  assert 'Step: 20, Loss:' in text  # mnist_deep's own log line, streamed.
  assert 'Step 20: test accuracy' in text
  assert 'Prediction: ' in text
  # The accuracy curve, the bars beside the digit and the 4x16 maps grid.
  assert len(pictures(notebook)) == 3
  widgets = [o for o in outputs(notebook) if
             'application/vnd.jupyter.widget-view+json' in o.get('data', {})]
  assert len(widgets) == 1


@pytest.mark.notebook
def test_cifar10_notebook_runs_with_every_picture(tmp_path):
  data_dir = cifar_fixtures.write_dataset(tmp_path / 'data',
                                          records_per_file=60)
  env = dict(CIFAR10_DATA_DIR=data_dir, CIFAR10_TRAIN_DIR=str(tmp_path / 'train'),
             CIFAR10_EVAL_DIR=str(tmp_path / 'eval'),
             CIFAR10_EXPORT_DIR=str(tmp_path / 'export'), CIFAR10_STEPS='20',
             CIFAR10_BATCH_SIZE='32', CIFAR10_WATCH_EXAMPLES='60',
             CIFAR10_TEST_EXAMPLES='60', CIFAR10_TENSORBOARD='0')
  notebook = execute('cifar10_tutorial.ipynb', env)
  assert_ran_cleanly(notebook)
  text = text_of(notebook)
  assert '1,068,298' in text  # The layer table's total.
  assert 'model.ckpt-20: precision @ 1 = ' in text
  assert 'serving_default: ' in text
  difference = float(text.split('largest difference from the checkpoint: ')[1]
                     .split()[0])
  assert difference < 1e-4  # The SavedModel gives the checkpoint's answer.
  # Training images, distortions, loss + precision curves, confusion
  # matrix, mistakes gallery, the test picture beside its bars.
  assert len(pictures(notebook)) == 6
  # The evaluator ran beside the trainer: its precision @ 1 events exist.
  assert any(name.startswith('events.out.tfevents')
             for name in os.listdir(str(tmp_path / 'eval')))
  assert os.path.isfile(str(tmp_path / 'export' / 'saved_model.pb'))


# ----------------------------------------------------------------------------
# The widget's Python side, on the suite's trained MNIST checkpoint.


@pytest.fixture(scope='module')
def widget(mnist_trained):
  return canvas.DrawDigit.from_checkpoint(mnist_trained['checkpoint_dir'])


def _vertical_stroke(size=280):
  ink = np.zeros((size, size), np.uint8)
  ink[40:240, size // 2 - 10:size // 2 + 10] = 255
  return ink


def test_a_stroke_updates_probabilities_prediction_and_maps(widget):
  widget.clear()
  assert widget.prediction == -1 and widget.probabilities == []
  ink = _vertical_stroke(widget.size)
  widget.drawing = ink.tobytes()  # As the browser sends it after a stroke.
  assert widget.message == ''
  np.testing.assert_array_equal(
      widget.digit, images.to_mnist(ink).reshape(28, 28))
  assert widget.digit.shape == (28, 28) and widget.digit.dtype == np.float32
  assert len(widget.probabilities) == 10
  assert abs(sum(widget.probabilities) - 1) < 1e-4
  assert widget.prediction == int(np.argmax(widget.probabilities))
  assert widget.maps_png.startswith('data:image/png;base64,')
  assert widget.digit_png.startswith('data:image/png;base64,')
  assert widget.before.shape == widget.after.shape == (28, 28, 32)
  # A later cell running the model on widget.digit gets the same answer.
  sess, model = widget._predict.session, widget._predict.model
  probabilities, _, after = mnist_model.look_at(sess, model, widget.digit)
  np.testing.assert_allclose(probabilities, widget.probabilities, atol=1e-6)
  np.testing.assert_allclose(after, widget.after, atol=1e-6)
  # draw() from Python is the same path.
  assert widget.draw(ink.astype(float)) == widget.prediction


@pytest.mark.parametrize('drawing, says', [
    (np.zeros((280, 280)), 'Draw a digit'),
    (np.full((20, 20), 7.0), 'Draw a digit'),
    (np.full((28, 28), 300.0), 'grey levels from 0 to 255'),
    (-np.eye(28), 'grey levels from 0 to 255'),
    (np.array([[np.nan, 255.0]]), 'not finite'),
    (np.zeros((2, 3, 4)), '2-D picture'),
    ('seven', 'not an array of grey levels'),
])
def test_empty_or_out_of_range_drawings_give_a_message(widget, drawing, says):
  assert widget.draw(_vertical_stroke(widget.size)) >= 0
  assert widget.draw(drawing) is None  # No exception.
  assert says in widget.message
  assert widget.prediction == -1 and widget.probabilities == []
  assert widget.digit is None and widget.maps_png == ''


def test_bytes_from_the_browser_of_the_wrong_size_give_a_message(widget):
  widget.drawing = b'\xff' * 100
  assert 'expected 280 x 280' in widget.message and widget.digit is None
  widget.drawing = b''  # The Clear button.
  assert widget.message.startswith('Draw a digit') and widget.prediction == -1


def test_a_failing_model_gives_a_message_not_a_traceback():

  def broken(digit):
    raise RuntimeError('the model is not there')

  widget = canvas.DrawDigit(broken)
  assert widget.draw(_vertical_stroke()) is None
  assert widget.message == ('Could not classify the drawing: the model is '
                            'not there')


def test_the_widget_ships_its_browser_side():
  source = canvas.DrawDigit._esm
  source = source.read_text() if hasattr(source, 'read_text') else str(source)
  assert 'export default' in source and 'pointerdown' in source
  assert 'touch-action: none' in open(os.path.join(
      REPO_ROOT, 'mnist_cnn', 'canvas.css')).read()
