"""The draw-a-digit page end to end in a real headless Chromium.

Needs Debian's chromium and chromium-driver (`.ci/run` installs them) and the
selenium package (the `test` extra).
"""
import threading

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from mnist_cnn import mnist_draw_server


@pytest.fixture(scope='module')
def browser(headless_chromium):
  with headless_chromium((1000, 1200)) as driver:
    yield driver


@pytest.fixture(scope='module')
def page_url(mnist_trained):
  server = mnist_draw_server.make_server(mnist_trained['checkpoint_dir'], 0)
  threading.Thread(target=server.serve_forever, daemon=True).start()
  yield 'http://127.0.0.1:%d/' % server.server_address[1]
  server.shutdown()
  server.server_close()


def _draw(driver, points):
  """Drags the mouse through canvas points (x, y measured from its centre)."""
  canvas = driver.find_element(By.ID, 'canvas')
  actions = ActionChains(driver)
  actions.move_to_element_with_offset(canvas, *points[0]).click_and_hold()
  for (x0, y0), (x1, y1) in zip(points, points[1:]):
    actions.move_by_offset(x1 - x0, y1 - y0)
  actions.release().perform()


def _bars(driver):
  return [float(driver.find_element(By.ID, 'bar-%d' % i).get_attribute(
      'data-p')) for i in range(10)]


def _wait_for_prediction(driver, not_equal='-'):
  WebDriverWait(driver, 30).until(
      lambda d: d.find_element(By.ID, 'prediction').text not in ('', not_equal))
  return int(driver.find_element(By.ID, 'prediction').text)


def test_drawing_shows_bars_prediction_and_feature_maps(browser, page_url):
  browser.get(page_url)
  assert browser.find_element(By.ID, 'prediction').text == '-'
  assert _bars(browser) == [0] * 10
  # A vertical stroke: the synthetic training data's "1".
  _draw(browser, [(0, -100 + 20 * i) for i in range(11)])
  first = _wait_for_prediction(browser)
  bars = _bars(browser)
  assert first == 1
  assert abs(sum(bars) - 1) < 1e-3 and max(bars) == bars[1]
  best = browser.find_element(By.ID, 'bar-1')
  assert 'best' in best.get_attribute('class')
  assert int(best.value_of_css_property('height').rstrip('px')) > 50
  maps = browser.find_element(By.ID, 'maps')
  assert maps.get_attribute('src').startswith('data:image/png;base64,')
  WebDriverWait(browser, 10).until(
      lambda d: d.execute_script(
          'return arguments[0].complete && arguments[0].naturalWidth', maps))
  assert browser.execute_script('return arguments[0].naturalWidth',
                                maps) == 16 * 57 + 1

  # Clear, then a horizontal stroke: the synthetic "2".
  browser.find_element(By.ID, 'clear').click()
  assert browser.find_element(By.ID, 'prediction').text == '-'
  assert _bars(browser) == [0] * 10
  _draw(browser, [(-100 + 20 * i, 0) for i in range(11)])
  second = _wait_for_prediction(browser)
  assert second == 2 and second != first
  assert max(_bars(browser)) == _bars(browser)[2]
  assert browser.find_element(By.ID, 'error').text == ''
