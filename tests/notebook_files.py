"""The notebooks as the tests use them, whatever using them left in notebooks/.

JupyterLab saves a notebook's outputs (and the kernel it ran on) into the
working copy as it autosaves. The tests that run or serve a notebook take
`clean_copy`: its cells, no outputs, the python3 kernel. The check that the
notebooks are committed without outputs reads what git has staged
(`committed_bytes`), not the working copy.

Imported by the notebook test modules once their extra is known to be
installed (nbformat comes with it).
"""
import os
import re
import subprocess

import nbformat

from cifar_fixtures import REPO_ROOT

NOTEBOOKS = os.path.join(REPO_ROOT, 'notebooks')
# The kernel every Jupyter with ipykernel has: a kernel name saved from
# another environment makes JupyterLab ask which kernel to start.
KERNELSPEC = {'display_name': 'Python 3 (ipykernel)', 'language': 'python',
              'name': 'python3'}
CLEAR_OUTPUTS = 'jupyter nbconvert --clear-output --inplace notebooks/*.ipynb'
# What TensorFlow prints by itself, which no cell's output may show: C++ log
# lines and absl's note before them, its Python logger's INFO lines,
# deprecation notes.
TENSORFLOW_NOTICE = re.compile(
    r'^[IWEF]\d{4} |absl::InitializeLog|INFO:tensorflow|deprecat', re.M | re.I)


def user_environment(**env):
  """os.environ as a user's kernel has it, updated with env: TensorFlow's
  log level not set, and no PYTEST_CURRENT_TEST, with which ipykernel leaves
  what is written to fd 2 (TensorFlow's C++ notices among it) out of the
  cells' outputs."""
  environment = dict(os.environ)
  for name in ('TF_CPP_MIN_LOG_LEVEL', 'PYTEST_CURRENT_TEST'):
    environment.pop(name, None)
  environment.update(env)
  return environment


def names():
  return sorted(name for name in os.listdir(NOTEBOOKS)
                if name.endswith('.ipynb'))


def cleared(notebook):
  """The notebook, changed in place: no outputs, execution counts, run
  timings or saved widget state, and the python3 kernel."""
  for cell in notebook.cells:
    if cell.cell_type == 'code':
      cell.outputs = []
      cell.execution_count = None
    cell.metadata.pop('execution', None)
  notebook.metadata.pop('widgets', None)
  notebook.metadata['kernelspec'] = nbformat.from_dict(dict(KERNELSPEC))
  return notebook


def clean_copy(name, folder=None):
  """notebooks/name as nbformat reads it, cleared; with folder, also written
  there (the folder a server serves) and its path returned alongside."""
  notebook = cleared(nbformat.read(os.path.join(NOTEBOOKS, name),
                                   as_version=4))
  if folder is None:
    return notebook
  path = os.path.join(str(folder), name)
  nbformat.write(notebook, path)
  return notebook, path


def committed_bytes(name, root=REPO_ROOT):
  """notebooks/name as git has it staged (the index: what the next commit
  holds, the last commit's file where nothing is staged); the working copy's
  file where root is not a git checkout or the notebook is not tracked."""
  relative = 'notebooks/' + name
  try:
    # ':./' names the path from root, which need not be the top of the
    # checkout.
    return subprocess.run(['git', 'show', ':./' + relative], cwd=root,
                          capture_output=True, check=True,
                          timeout=30).stdout
  except (OSError, subprocess.CalledProcessError):
    with open(os.path.join(root, relative), 'rb') as f:
      return f.read()


def cells_with_outputs(name, root=REPO_ROOT):
  """The ids of the committed notebook's code cells that hold outputs or an
  execution count."""
  notebook = nbformat.reads(committed_bytes(name, root).decode('utf-8'),
                            as_version=4)
  return [cell.get('id') for cell in notebook.cells if cell.cell_type == 'code'
          and (cell.outputs or cell.execution_count is not None)]
