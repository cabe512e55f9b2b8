"""Takes the documentation's TensorBoard screenshot, docs/images/tensorboard_scalars.png.

  python scripts/docs_screenshots.py [--data_dir=/tmp/cifar10_data] [--steps=600]

Trains cifar10_train --schedule=fast for --steps steps with an evaluator
beside it (as the tutorial's TensorBoard section runs them, into one parent
folder), starts TensorBoard on 127.0.0.1 on that folder, opens its scalars
in headless Chromium (Debian's chromium and chromium-driver, with selenium
from the test extra) and saves the screenshot. It takes a few minutes on two
CPU cores. Without the data in --data_dir, the trainer downloads it.
"""
import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUTPUT = os.path.join(REPO, 'docs', 'images', 'tensorboard_scalars.png')
TAGS = '^(total_loss|cross_entropy|learning_rate|Precision @ 1)$'


def _free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _command(name, *args):
  return [sys.executable, os.path.join(REPO, 'cifar10', name + '.py')] + list(
      args)


def train_and_evaluate(data_dir, root, steps):
  train, evaluation = os.path.join(root, 'train'), os.path.join(root, 'eval')
  evaluator = subprocess.Popen(_command(
      'cifar10_eval', '--data_dir=' + data_dir, '--checkpoint_dir=' + train,
      '--eval_dir=' + evaluation, '--eval_interval_secs=20',
      '--num_examples=2000'))
  try:
    subprocess.run(_command(
        'cifar10_train', '--data_dir=' + data_dir, '--train_dir=' + train,
        '--schedule=fast', '--fast_epochs=%g' % (steps * 128 / 50000.0),
        '--save_checkpoint_secs=20', '--save_summaries_steps=20'),
                   check=True)
    time.sleep(25)  # The evaluator scores the last checkpoint.
  finally:
    evaluator.terminate()
    evaluator.wait()


def screenshot(root):
  from selenium import webdriver  # pylint: disable=g-import-not-at-top
  from selenium.webdriver.chrome.service import Service  # pylint: disable=g-import-not-at-top
  port = _free_port()
  board = subprocess.Popen(
      [os.path.join(os.path.dirname(sys.executable), 'tensorboard'),
       '--logdir', root, '--host', '127.0.0.1', '--port', str(port)],
      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  profile = tempfile.mkdtemp(prefix='chromium-profile-')
  try:
    url = 'http://127.0.0.1:%d/' % port
    for _ in range(120):
      try:
        urllib.request.urlopen(url, timeout=2)
        break
      except OSError:
        time.sleep(0.5)
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which('chromium')
    for argument in ['--headless', '--no-sandbox', '--disable-gpu',
                     '--disable-dev-shm-usage', '--window-size=1600,1000',
                     '--user-data-dir=' + profile]:
      options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(shutil.which('chromedriver')),
                              options=options)
    try:
      # The scalars the tutorial's table explains, side by side.
      driver.get(url + '?tagFilter=' + urllib.parse.quote(TAGS) +
                 '#timeseries')
      time.sleep(15)  # TensorBoard loads the runs and draws the charts.
      driver.save_screenshot(OUTPUT)
    finally:
      driver.quit()
  finally:
    board.terminate()
    board.wait()
    shutil.rmtree(profile, ignore_errors=True)
  print('wrote %s' % os.path.relpath(OUTPUT, REPO))


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--data_dir', default='/tmp/cifar10_data')
  parser.add_argument('--steps', type=int, default=600)
  args = parser.parse_args(argv)
  root = tempfile.mkdtemp(prefix='docs-tensorboard-')
  try:
    train_and_evaluate(args.data_dir, root, args.steps)
    screenshot(root)
  finally:
    shutil.rmtree(root, ignore_errors=True)
  return 0


if __name__ == '__main__':
  sys.exit(main())
