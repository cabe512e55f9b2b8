"""The documentation is no older than what it shows, and keeps no lab notebook.

* Every generated block of README.md and docs/*.md (figures, flags, layers,
  schedules) is what scripts/docs_generate.py makes today from docs/*.json,
  docs/curve_*.csv and the code; every data file says where it came from.
* The pictures of docs/images/ were drawn from today's inputs
  (scripts/docs_figures.py), and the notebooks' rendered pages from today's
  notebooks (scripts/docs_notebooks.py).
* README.md is a landing page: short, the results on its first screen, its
  links all lead somewhere.
* No page keeps a dated log: no issue numbers, no 'since <date>', no paths
  outside the repository, no date outside a generated block.
"""
import os
import re
import sys

from cifar_fixtures import REPO_ROOT

sys.path.insert(0, os.path.join(REPO_ROOT, 'scripts'))
import docs_figures  # noqa: E402  pylint: disable=g-import-not-at-top
import docs_generate  # noqa: E402  pylint: disable=g-import-not-at-top
import docs_notebooks  # noqa: E402  pylint: disable=g-import-not-at-top

README = os.path.join(REPO_ROOT, 'README.md')


def _pages():
  return [p for p in docs_generate.pages()
          if os.sep + 'notebooks' + os.sep not in p]


def test_every_generated_block_is_current(capsys):
  status = docs_generate.main(['--check'])
  assert status == 0, capsys.readouterr().err


def test_every_data_file_says_where_it_was_measured():
  assert docs_generate.check_data(docs_generate.load_results()) == []


def test_the_pictures_are_drawn_from_todays_inputs():
  assert docs_figures.stale() == [], (
      'run python scripts/docs_figures.py')


def test_the_notebook_pages_are_from_todays_notebooks():
  assert docs_notebooks.stale() == [], (
      'run python scripts/docs_notebooks.py')


def test_the_readme_is_a_landing_page():
  with open(README) as f:
    lines = f.read().splitlines()
  assert len(lines) <= 200, len(lines)
  # The results table on the first screen.
  assert lines.index('## Results') < 30
  assert lines.index('<!-- generated: results -->') < 35


def _anchors(path):
  """The heading anchors MkDocs (and the repository host) make for a page."""
  with open(path) as f:
    text = f.read()
  text = re.sub(r'^```.*?^```', '', text, flags=re.M | re.S)
  anchors = set()
  for heading in re.findall(r'^#+ (.+)$', text, re.M):
    slug = re.sub(r'[^\w\- ]', '', heading.lower()).strip()
    anchors.add(re.sub(r'[\s]+', '-', slug))
  return anchors


def test_the_readmes_links_lead_somewhere():
  with open(README) as f:
    text = f.read()
  broken = []
  for target in re.findall(r'\]\(([^)\s]+)\)', text):
    if re.match(r'https?://', target):
      continue
    path, _, anchor = target.partition('#')
    full = os.path.join(REPO_ROOT, path)
    if not os.path.exists(full):
      broken.append(target)
    elif anchor and anchor not in _anchors(full):
      broken.append(target)
  assert not broken, broken


LAB_NOTEBOOK = [
    (re.compile(r'(?<![\w&/])#\d+\b'), 'an issue number'),
    (re.compile(r'\bissue\b', re.I), 'an issue'),
    (re.compile(r'\bsince (?:\d{4}|yesterday|today|last)', re.I),
     "a 'since' narrative"),
    (re.compile(r'(?:\.\./shared|/work/)'),
     'a path outside the repository'),
    (re.compile(r'\b20\d\d-\d\d-\d\d\b'), 'a date outside a generated block'),
]


def test_no_page_keeps_a_lab_notebook():
  found = []
  for path in _pages():
    with open(path) as f:
      text = f.read()
    # Generated blocks carry each figure's date by design; example log lines
    # (in code blocks) carry a timestamp as the commands print one.
    text = docs_generate.BLOCK.sub('', text)
    text = re.sub(r'^```.*?^```', '', text, flags=re.M | re.S)
    for line_number, line in enumerate(text.splitlines(), 1):
      for pattern, what in LAB_NOTEBOOK:
        if pattern.search(line):
          found.append('%s: %s: %s' % (os.path.relpath(path, REPO_ROOT),
                                       what, line.strip()))
  assert not found, '\n'.join(found)


def test_a_measured_figure_has_one_home():
  """No page types a figure of a data file by hand: each precision @ 1 or
  examples/sec figure of docs/ appears only inside generated blocks."""
  results = docs_generate.load_results()
  figures = set()
  for name in docs_generate.curve_files():
    for row in docs_generate.read_curve(name):
      figures.add(docs_generate.precision(row['precision']))
  for entry in results['mnist']['curve']:
    figures.add('%.4f' % entry['accuracy'])
  figures -= {'0.100', '0.860'}  # Chance, and the tutorial's published target.
  found = []
  for path in _pages():
    with open(path) as f:
      text = docs_generate.BLOCK.sub('', f.read())
    text = re.sub(r'^```.*?^```', '', text, flags=re.M | re.S)
    for figure in figures:
      if re.search(r'(?<![\d.])%s(?!\d)' % re.escape(figure), text):
        found.append('%s: %s' % (os.path.relpath(path, REPO_ROOT), figure))
  assert not found, found
