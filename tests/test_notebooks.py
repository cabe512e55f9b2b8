"""The notebooks run top to bottom in a real kernel, and the DrawDigit widget's
Python side.

notebooks/mnist_deep.ipynb and notebooks/cifar10_tutorial.ipynb run headless
with nbclient on tiny generated data, their first cell's knobs set by
environment variables (a few steps, temp folders): no error output, none of
TensorFlow's own notices, and the pictures they promise. Their kernels start
as a user's do (the editable install, TF_CPP_MIN_LOG_LEVEL unset), from
copies without outputs (notebook_files), so a notebook that JupyterLab saved
with outputs changes nothing here. Needs the notebook extra (pip install -e
'.[notebook]'); without it these tests are skipped. The notebook runs are
marked `notebook` (python -m pytest -m notebook runs only them). Nothing is
downloaded.
"""
import json
import os
import re
import subprocess
import sys
import venv

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
import jupyter_client  # noqa: E402
import nbclient  # noqa: E402
import nbformat  # noqa: E402

from mnist_cnn import canvas  # noqa: E402  (anywidget: the notebook extra)
from mnist_cnn import images  # noqa: E402
from mnist_cnn import model as mnist_model  # noqa: E402
import notebook_files  # noqa: E402
from notebook_files import NOTEBOOKS  # noqa: E402

INSTALL_LINE = ("The project's package is not installed: run pip install -e "
                "'.[notebook]' in the repository folder, then restart the "
                "kernel.")
TENSORFLOW_NOTICE = notebook_files.TENSORFLOW_NOTICE


def user_env(**env):
  """The environment of a user's kernel (notebook_files.user_environment),
  its output unbuffered and its pictures inline."""
  return notebook_files.user_environment(
      PYTHONUNBUFFERED='1',
      MPLBACKEND='module://matplotlib_inline.backend_inline', **env)


def execute(notebook, folder, env, timeout=240, **client_args):
  """The notebook, run top to bottom in a fresh kernel (python3, unless
  client_args give a kernel manager) started in folder, as Jupyter starts
  one in the notebook's folder, with env."""
  client = nbclient.NotebookClient(
      notebook, timeout=timeout, kernel_name='python3',
      resources={'metadata': {'path': str(folder)}}, **client_args)
  client.execute(env=env)
  return notebook


def execute_copy(name, folder, env):
  """A copy of notebooks/name without outputs, run in folder as a user's."""
  return execute(notebook_files.clean_copy(name), folder, user_env(**env))


def outputs(notebook):
  return [output for cell in notebook.cells if cell.cell_type == 'code'
          for output in cell.outputs]


def streams(notebook):
  return ''.join(output.text for output in outputs(notebook)
                 if output.output_type == 'stream')


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


def assert_quiet(notebook):
  """No TensorFlow notice in any cell's output: not from the kernel, nor
  from the commands the cells run."""
  notices = [line for line in streams(notebook).splitlines()
             if TENSORFLOW_NOTICE.search(line)]
  assert not notices, notices[:5]


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
    code = [c for c in notebook.cells if c.cell_type == 'code']
    first = code[0]
    assert 'parameters' in first.metadata.get('tags', []), name
    for knob in knobs:
      assert '\n%s = ' % knob in '\n' + first.source, (name, knob)
    # Knobs and the one import they need; the project's packages come with
    # the next cell, which says how to install them when they are missing.
    assert [line for line in first.source.splitlines()
            if line.startswith(('import', 'from'))] == ['import os'], name
    assert 'sys.path' not in code[1].source, name
    assert 'PYTHONPATH' not in code[1].source, name
    assert code[1].source.index('console.quiet_tensorflow()') < min(
        code[1].source.index(module) for module in (
            'import matplotlib', 'import numpy', 'tensorboard', 'from cifar10',
            'from mnist_cnn') if module in code[1].source), name


def test_notebooks_are_committed_without_outputs():
  """As git has them staged (or committed), not the working copy's: whoever
  ran the notebooks in JupyterLab has their outputs there, as they may."""
  for name in notebook_files.names():
    cells = notebook_files.cells_with_outputs(name)
    assert not cells, (
        'notebooks/%s is staged with outputs (cells %s): clear them with '
        '`%s` (the notebook extra installs nbconvert), then git add it.'
        % (name, ', '.join(str(c) for c in cells),
           notebook_files.CLEAR_OUTPUTS))


def _notebook_with_outputs():
  notebook = nbformat.v4.new_notebook()
  cell = nbformat.v4.new_code_cell('print(1)', execution_count=3)
  cell.outputs = [nbformat.v4.new_output('stream', name='stdout', text='1\n')]
  cell.metadata['execution'] = {'iopub.status.idle': '2000-01-01T00:00:00Z'}
  notebook.cells = [nbformat.v4.new_markdown_cell('# A notebook'), cell]
  notebook.metadata['kernelspec'] = {'name': 'my-venv', 'language': 'python',
                                     'display_name': 'Python (my-venv)'}
  notebook.metadata['widgets'] = {'application/vnd.jupyter.widget-state+json':
                                  {'state': {}}}
  return notebook


def test_the_outputs_check_reads_the_index_and_copies_are_clean(tmp_path):
  """Outputs in the working copy pass the check until they are staged; the
  copies the tests run have no outputs and the python3 kernel."""
  if subprocess.run(['git', '--version'], capture_output=True).returncode:
    pytest.skip('git is not installed')
  (tmp_path / 'notebooks').mkdir()
  path = str(tmp_path / 'notebooks' / 'a.ipynb')
  nbformat.write(notebook_files.cleared(_notebook_with_outputs()), path)

  def git(*args):
    subprocess.run(['git'] + list(args), cwd=str(tmp_path), check=True,
                   capture_output=True)

  git('init', '-q')
  git('add', 'notebooks/a.ipynb')
  nbformat.write(_notebook_with_outputs(), path)  # Saved after a run.
  assert notebook_files.cells_with_outputs('a.ipynb', str(tmp_path)) == []
  git('add', 'notebooks/a.ipynb')
  cells = notebook_files.cells_with_outputs('a.ipynb', str(tmp_path))
  assert len(cells) == 1
  # Outside a git checkout, the file itself.
  (tmp_path / '.git').rename(tmp_path / 'not-git')
  assert notebook_files.cells_with_outputs('a.ipynb', str(tmp_path)) == cells

  copy = notebook_files.cleared(_notebook_with_outputs())
  code = copy.cells[1]
  assert code.outputs == [] and code.execution_count is None
  assert 'execution' not in code.metadata and 'widgets' not in copy.metadata
  assert copy.metadata.kernelspec.name == 'python3'
  assert copy.cells[1].source == 'print(1)'


def _bare_environment(folder):
  """A virtual environment with everything the test's has (the kernel,
  TensorFlow, the notebook extra) but the project: the site-packages folders
  are on its path, their .pth files, the editable install among them, are
  not read."""
  venv.EnvBuilder(with_pip=False, symlinks=True).create(folder)
  python = os.path.join(folder, 'bin', 'python')
  site_packages = subprocess.run(
      [python, '-c', 'import site; print(site.getsitepackages()[0])'],
      capture_output=True, text=True, check=True).stdout.strip()
  with open(os.path.join(site_packages, 'outer.pth'), 'w') as f:
    f.write('\n'.join(p for p in sys.path if p.endswith('site-packages')
                      and os.path.isdir(p)) + '\n')
  if not subprocess.run([python, '-c', 'import tutorials_common'],
                        cwd=folder, capture_output=True).returncode:
    pytest.skip('the project is installed into site-packages itself, not '
                'editable: no environment of this one without it')
  kernels = os.path.join(folder, 'kernels')
  os.makedirs(os.path.join(kernels, 'bare'))
  with open(os.path.join(kernels, 'bare', 'kernel.json'), 'w') as f:
    json.dump({'argv': [python, '-m', 'ipykernel_launcher', '-f',
                        '{connection_file}'],
               'display_name': 'bare', 'language': 'python'}, f)
  return jupyter_client.KernelManager(
      kernel_name='bare', kernel_spec_manager=jupyter_client.kernelspec
      .KernelSpecManager(kernel_dirs=[kernels]))


@pytest.mark.notebook
def test_without_the_package_the_imports_cell_says_how_to_install_it(
    tmp_path):
  """Each notebook's knobs and imports in a kernel whose Python does not
  have the project (nor the checkout on its path): one error, whose message
  is one line naming the install command."""
  km = _bare_environment(str(tmp_path / 'venv'))
  notebook = nbformat.v4.new_notebook()
  for name in notebook_files.names():
    notebook.cells += [c for c in notebook_files.clean_copy(name).cells
                       if c.cell_type == 'code'][:2]
  env = user_env()
  env.pop('PYTHONPATH', None)
  execute(notebook, tmp_path, env, timeout=120, km=km, allow_errors=True)
  for knobs, imports in zip(notebook.cells[::2], notebook.cells[1::2]):
    assert knobs.outputs == []
    assert [o.output_type for o in imports.outputs] == ['error'], (
        imports.outputs)
    error = imports.outputs[0]
    assert (error.ename, error.evalue) == ('ModuleNotFoundError',
                                           INSTALL_LINE)
    assert '\n' not in error.evalue


@pytest.mark.notebook
def test_tensorflow_level_0_shows_its_notices_in_the_notebook(tmp_path):
  """TF_CPP_MIN_LOG_LEVEL=0 asks for everything TensorFlow prints: the
  imports cell then leaves its notices under the cell, so the notebooks'
  quiet runs below are quiet for a reason."""
  copy = notebook_files.clean_copy('cifar10_tutorial.ipynb')
  copy.cells = [c for c in copy.cells if c.cell_type == 'code'][:2]
  notebook = execute(copy, tmp_path, user_env(TF_CPP_MIN_LOG_LEVEL='0'))
  assert_ran_cleanly(notebook)
  assert TENSORFLOW_NOTICE.search(streams(notebook)), outputs(notebook)


@pytest.fixture(scope='module')
def mnist_notebook(tmp_path_factory):
  root = tmp_path_factory.mktemp('mnist_notebook')
  env = dict(MNIST_DATA_DIR=mnist_fixtures.write_mnist(
                 root / 'data', num_train=300, num_test=100),
             MNIST_CHECKPOINT_DIR=str(root / 'checkpoints'),
             MNIST_LOG_DIR=str(root / 'logs'), MNIST_STEPS='20',
             MNIST_EVAL_EVERY='10')
  return dict(env, notebook=execute_copy('mnist_deep.ipynb', root, env))


@pytest.mark.notebook
def test_mnist_notebook_trains_and_shows_accuracy_widget_bars_and_maps(
    mnist_notebook):
  notebook = mnist_notebook['notebook']
  assert_ran_cleanly(notebook)
  assert_quiet(notebook)
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
  notebook = execute_copy('cifar10_tutorial.ipynb', tmp_path, env)
  assert_ran_cleanly(notebook)
  assert_quiet(notebook)
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
  # The upload button as wide as its label, which is not cut off.
  widgets = notebook.metadata.widgets[
      'application/vnd.jupyter.widget-state+json']['state']
  upload, = [w['state'] for w in widgets.values()
             if w['model_name'] == 'FileUploadModel']
  assert upload['description'] == 'Upload a picture'
  layout = widgets[upload['layout'][len('IPY_MODEL_'):]]
  assert layout['model_name'] == 'LayoutModel'
  assert layout['state']['width'] == 'auto'


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
