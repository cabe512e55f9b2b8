"""notebooks/mnist_deep.ipynb in JupyterLab 4 and Notebook 7, in a real
headless Chromium: run all cells, draw a stroke on the DrawDigit canvas with
the mouse, and see the prediction and the bars.

The server runs on 127.0.0.1 with a token of the test's, serving a copy of
the notebook in a temp folder, without the outputs and kernel name that
JupyterLab may have saved into notebooks/ (notebook_files.clean_copy; its
autosave never touches notebooks/ either). Its kernel starts as a user's
(the editable install, TF_CPP_MIN_LOG_LEVEL unset) and restores the suite's
trained MNIST checkpoint; no TensorFlow notice shows under a cell. Takes the
screenshots docs/notebooks.md shows; with SAVE_SCREENSHOTS=1 in the environment it
writes them to docs/notebook_jupyterlab.png and docs/notebook_notebook7.png
(not on every run, so that running the tests leaves the checkout as it
was).
Needs the notebook extra (skipped without it), selenium and Debian's
chromium + chromedriver (as tests/test_mnist_page.py).
"""
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

# The notebook checks: python -m pytest -m notebook runs only these.
pytestmark = pytest.mark.notebook

from cifar_fixtures import REPO_ROOT
import suite_helpers

NOTEBOOK_EXTRA = "the notebook extra is not installed: pip install -e '.[notebook]'"
suite_helpers.skip_unless_installed(
    ['jupyterlab', 'notebook', 'anywidget', 'ipywidgets', 'ipykernel',
     'matplotlib', 'nbformat'],
    NOTEBOOK_EXTRA)
from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

import notebook_files  # noqa: E402
from tutorials_common import checkpoints  # noqa: E402

TOKEN = 'notebook-test-token'

NAME = 'mnist_deep.ipynb'


def _free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


@pytest.fixture
def browser(headless_chromium):
  with headless_chromium((1280, 1000)) as driver:
    yield driver


def _start_server(program, root, env):
  port = _free_port()
  log = open(os.path.join(root, 'server.log'), 'w')
  process = subprocess.Popen(
      [sys.executable, '-m', program, '--no-browser',
       '--ServerApp.token=' + TOKEN, '--ServerApp.ip=127.0.0.1',
       '--port=%d' % port, '--ServerApp.port_retries=0',
       '--ServerApp.root_dir=' + root] +
      # CI's containers run as root, which Jupyter refuses without this.
      (['--allow-root'] if os.geteuid() == 0 else []),
      cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
  url = 'http://127.0.0.1:%d' % port
  deadline = time.time() + 60
  while True:
    try:
      urllib.request.urlopen('%s/api/status?token=%s' % (url, TOKEN), timeout=2)
      return process, url
    except OSError:
      if process.poll() is not None or time.time() > deadline:
        process.kill()
        raise AssertionError('%s did not start: %s' % (
            program, open(os.path.join(root, 'server.log')).read()[-3000:]))
      time.sleep(0.5)


def _stop_server(process):
  process.terminate()  # The server shuts its kernels down first.
  try:
    process.wait(timeout=20)
  except subprocess.TimeoutExpired:
    process.kill()
    process.wait()


def _click_menu(driver, menu, item):
  WebDriverWait(driver, 60).until(lambda d: d.find_elements(
      By.XPATH, "//li[contains(@class, 'lm-MenuBar-item')]"
      "[.//div[normalize-space(text())='%s']]" % menu))[0].click()
  WebDriverWait(driver, 10).until(lambda d: d.find_elements(
      By.XPATH, "//li[contains(@class, 'lm-Menu-item')]"
      "[.//div[normalize-space(text())='%s']]" % item))[0].click()


def _accept_dialogs(driver):
  """Accepts what a loaded machine can pop up over the page (JupyterLab's
  kernel dialogs: 'Select Kernel' after a kernel start that timed out,
  'Kernel Restarting'), naming each in the log."""
  for dialog in driver.find_elements(By.CSS_SELECTOR, '.jp-Dialog'):
    print('Dialog over the notebook: %r' % dialog.text)
    buttons = dialog.find_elements(By.CSS_SELECTOR,
                                   '.jp-Dialog-button.jp-mod-accept')
    if buttons:
      buttons[0].click()
      WebDriverWait(driver, 10).until(lambda d: not d.find_elements(
          By.CSS_SELECTOR, '.jp-Dialog'))


def _what_went_wrong(driver, root):
  """The page's prompts, dialogs and the server log's tail, for a failure."""
  prompts = [p.text for p in driver.find_elements(
      By.CSS_SELECTOR, '.jp-CodeCell .jp-InputPrompt')]
  dialogs = [d.text for d in driver.find_elements(By.CSS_SELECTOR,
                                                  '.jp-Dialog')]
  outputs = driver.find_elements(By.CSS_SELECTOR, '.jp-OutputArea')
  with open(os.path.join(root, 'server.log')) as f:
    log = f.read()[-2500:]
  return ('no drawing canvas after Run All: prompts %s, dialogs %s, outputs '
          '%r; server log: %s' % (prompts, dialogs,
                                  [o.text[-300:] for o in outputs], log))


def _run_all_cells(driver, attempts=3):
  """Run > Run All Cells, again if the first cell did not start: under load
  a click can land while the menu is still opening."""
  def started(d):
    prompts = d.find_elements(By.CSS_SELECTOR, '.jp-CodeCell .jp-InputPrompt')
    return prompts and any(c in prompts[0].text for c in '*0123456789')
  for _ in range(attempts):
    _accept_dialogs(driver)
    _click_menu(driver, 'Run', 'Run All Cells')
    try:
      WebDriverWait(driver, 15).until(started)
      return
    except TimeoutException:
      pass
  raise AssertionError('Run All Cells did not start the first cell')


def _run_all_until_canvas(driver, root, seconds=150, reruns=2):
  """Runs all cells until the drawing canvas shows. On a loaded machine the
  frontend can still drop its kernel for a new one after Run All (seen
  once: every prompt back to '[ ]:' and the server log naming a second
  kernel), so an idle notebook with no cell run is run again."""
  def canvas(d):
    return [c for c in d.find_elements(By.CSS_SELECTOR, '.draw-digit-canvas')
            if c.is_displayed()]

  def nothing_ran(d):
    prompts = [p.text for p in d.find_elements(
        By.CSS_SELECTOR, '.jp-CodeCell .jp-InputPrompt')]
    return (prompts and not any(c in ''.join(prompts) for c in '*0123456789')
            and d.find_elements(By.CSS_SELECTOR,
                                '.jp-Notebook-ExecutionIndicator'
                                '[data-status="idle"]'))

  deadline = time.time() + seconds
  for attempt in range(reruns + 1):
    _run_all_cells(driver)
    idle_since = None
    while time.time() < deadline:
      found = canvas(driver)
      if found:
        return found[0]
      if nothing_ran(driver):
        idle_since = idle_since or time.time()
        if time.time() - idle_since > 5 and attempt < reruns:
          print('Run All again: the notebook is idle and no cell ran.')
          break
      else:
        idle_since = None
      time.sleep(0.5)
    else:
      break
  raise AssertionError(_what_went_wrong(driver, root))


@pytest.mark.parametrize('program, path, screenshot', [
    ('jupyterlab', '/lab/tree/%s', 'notebook_jupyterlab.png'),
    ('notebook', '/notebooks/%s', 'notebook_notebook7.png'),
])
def test_drawing_in_the_notebook_shows_prediction_and_bars(
    browser, mnist_trained, tmp_path, program, path, screenshot):
  root = str(tmp_path / 'served')
  os.makedirs(root)
  notebook_files.clean_copy(NAME, root)
  home = str(tmp_path / 'home')
  # No "Would you like to get notified about official Jupyter news?" toast
  # (nor a request for the news) over the screenshot.
  settings = os.path.join(home, 'settings', '@jupyterlab', 'apputils-extension')
  os.makedirs(settings)
  with open(os.path.join(settings, 'notification.jupyterlab-settings'),
            'w') as f:
    f.write('{"fetchNews": "false", "checkForUpdates": false}')
  env = notebook_files.user_environment(
      HOME=home,
      JUPYTERLAB_SETTINGS_DIR=os.path.join(home, 'settings'),
      JUPYTER_CONFIG_DIR=os.path.join(home, 'cfg'),
      JUPYTER_RUNTIME_DIR=os.path.join(home, 'runtime'),
      JUPYTERLAB_WORKSPACES_DIR=os.path.join(home, 'workspaces'),
      MNIST_DATA_DIR=mnist_trained['data_dir'],
      MNIST_CHECKPOINT_DIR=mnist_trained['checkpoint_dir'],
      MNIST_LOG_DIR=mnist_trained['log_dir'], MNIST_TRAIN_AGAIN='0')
  process, url = _start_server(program, root, env)
  try:
    browser.get(url + path % NAME + '?token=' + TOKEN)
    WebDriverWait(browser, 60).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, '.jp-Notebook .jp-Cell'))
    # Run all only once the page's kernel is up and idle: on a loaded
    # machine the frontend may start a kernel, drop it and start another,
    # and cells sent meanwhile never run.
    WebDriverWait(browser, 90).until(lambda d: d.find_elements(
        By.CSS_SELECTOR, '.jp-Notebook-ExecutionIndicator[data-status="idle"]'))
    canvas = _run_all_until_canvas(browser, root)
    browser.execute_script('arguments[0].scrollIntoView({block: "center"})',
                           canvas)
    time.sleep(0.5)
    assert browser.find_element(By.CSS_SELECTOR,
                                '.draw-digit-prediction').text == ''
    # A vertical stroke: the synthetic training data's "1".
    actions = ActionChains(browser)
    actions.move_to_element_with_offset(canvas, 0, -100).click_and_hold()
    for _ in range(10):
      actions.move_by_offset(0, 20)
    actions.release().perform()
    WebDriverWait(browser, 60).until(lambda d: d.find_element(
        By.CSS_SELECTOR, '.draw-digit-prediction').text.startswith(
            'Prediction: '))
    prediction = int(browser.find_element(
        By.CSS_SELECTOR, '.draw-digit-prediction').text.split(': ')[1])
    bars = [float(b.get_attribute('data-p')) for b in browser.find_elements(
        By.CSS_SELECTOR, '.draw-digit-bar')]
    assert len(bars) == 10 and abs(sum(bars) - 1) < 1e-3
    assert bars.index(max(bars)) == prediction
    widths = [b.size['width'] for b in browser.find_elements(
        By.CSS_SELECTOR, '.draw-digit-bar')]
    assert max(widths) > 0  # The bars are drawn, not only in the DOM.
    WebDriverWait(browser, 10).until(lambda d: d.find_element(
        By.CSS_SELECTOR, '.draw-digit-maps-image').get_attribute(
            'src').startswith('data:image/png'))
    # With a checkpoint there (TRAIN_AGAIN off), the notebook restored it
    # instead of training, and scored the restored model.
    page = browser.find_element(By.CSS_SELECTOR, '.jp-Notebook').text
    assert 'Restoring %s' % checkpoints.find_checkpoint(
        mnist_trained['checkpoint_dir']) in page
    assert re.search(r'Step 120: test accuracy [\d.]+', page)
    # No TensorFlow notice under a cell.
    shown = '\n'.join(o.text for o in browser.find_elements(
        By.CSS_SELECTOR, '.jp-OutputArea-output'))
    assert 'test accuracy' in shown  # The outputs are where it looks.
    assert not notebook_files.TENSORFLOW_NOTICE.search(shown), shown[-2000:]
    widget = browser.find_element(By.CSS_SELECTOR, '.draw-digit')
    browser.execute_script('arguments[0].scrollIntoView({block: "start"})',
                           widget)
    time.sleep(0.5)
    shot = str(tmp_path / screenshot)
    browser.save_screenshot(shot)
    with open(shot, 'rb') as f:
      png = f.read()
    # The browser window's viewport, 1280 wide.
    assert png.startswith(b'\x89PNG') and int.from_bytes(png[16:20],
                                                          'big') == 1280
    if os.environ.get('SAVE_SCREENSHOTS') == '1':
      shutil.copy(shot, os.path.join(REPO_ROOT, 'docs', screenshot))
  finally:
    _stop_server(process)
