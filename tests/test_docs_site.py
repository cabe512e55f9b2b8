"""The documentation site builds in strict mode, and its tutorial page shows
its pictures in a real browser.

`mkdocs build --strict` (mkdocs.yml) fails on a broken link, a missing
anchor, a page missing from the navigation or a navigation entry without a
page; it takes seconds. Then headless Chromium opens the built CIFAR-10
tutorial page and checks that its headings, tables and every picture
rendered; with SAVE_SCREENSHOTS=1 in the environment it writes the
screenshot docs/images/site_tutorial.png (not on every run, so that running
the tests leaves the checkout as it was). Needs the docs extra (pip install
-e '.[docs]'): skipped without it, except under CI=true.
"""
import os
import subprocess
import sys
import time

import pytest

from cifar_fixtures import REPO_ROOT

SCREENSHOT = os.path.join(REPO_ROOT, 'docs', 'images', 'site_tutorial.png')
DOCS_EXTRA = "the docs extra is not installed: pip install -e '.[docs]'"


def _require_docs_extra():
  try:
    import mkdocs  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
    import material  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    if os.environ.get('CI') == 'true':
      pytest.fail(DOCS_EXTRA)
    pytest.skip(DOCS_EXTRA)


@pytest.fixture(scope='module')
def site(tmp_path_factory):
  _require_docs_extra()
  out = tmp_path_factory.mktemp('site')
  result = subprocess.run(
      [sys.executable, '-m', 'mkdocs', 'build', '--strict', '--site-dir',
       str(out)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
      env=dict(os.environ, NO_MKDOCS_2_WARNING='1'))
  assert result.returncode == 0, result.stderr[-5000:]
  return out


def test_the_site_builds_in_strict_mode(site):
  for page in ['index.html', 'cifar10-tutorial/index.html',
               'reference/index.html', 'performance/index.html',
               'notebooks/cifar10_tutorial/index.html']:
    assert (site / page).exists(), page


def test_the_tutorial_page_renders_with_its_pictures(site, headless_chromium):
  page = site / 'cifar10-tutorial' / 'index.html'
  with headless_chromium((1280, 1400)) as browser:
    browser.get(page.as_uri())
    title = browser.execute_script('return document.querySelector("h1")'
                                   '.textContent')
    assert 'CIFAR-10 tutorial' in title
    pictures = browser.execute_script(
        'return Array.from(document.querySelectorAll("article img")).map('
        'i => [i.getAttribute("src"), i.complete && i.naturalWidth > 0])')
    assert len(pictures) >= 3, pictures
    assert all(loaded for _, loaded in pictures), pictures
    # The generated tables: the layers with their parameter count.
    cells = browser.execute_script(
        'return Array.from(document.querySelectorAll("article td")).map('
        't => t.textContent)')
    assert '1,068,298' in ''.join(cells) or any('1,068,298' in c
                                                for c in cells), cells[:40]
    # The picture of the layers, scrolled into view for the screenshot.
    browser.execute_script(
        'document.querySelector("img[src*=cifar10_layers]").scrollIntoView()')
    if os.environ.get('SAVE_SCREENSHOTS') == '1':
      time.sleep(1)  # The header's title changes as the page scrolls.
      browser.save_screenshot(SCREENSHOT)
