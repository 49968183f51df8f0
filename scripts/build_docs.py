#!/usr/bin/env python3
# Copyright 2026 The pyscope Authors.
# SPDX-License-Identifier: Apache-2.0
"""Builds pyscope's HTML documentation with Doxygen, with zero warnings.

Writes the site's index page (every docs/*.md page, the known ones first in
reading order, any other one after them, so a new page is linked as soon as
it exists), fills in docs/Doxyfile.in, runs Doxygen, and fails when Doxygen
wrote any warning (printing them) or when a page of docs/ is missing from
the site.

Usage (docs/meson.build runs it):
  build_docs.py --doxygen doxygen --source-root DIR --build-include DIR
      --version 0.2.0 --output DIR --stamp FILE [-- CHECK_ARGS...]
With CHECK_ARGS, then runs scripts/check_doc_names.py CHECK_ARGS on the
site's XML index and exits with its status.
"""

import argparse
import glob
import os
import re
import shlex
import subprocess
import sys

# Reading order of the pages that exist or are planned; others follow.
ORDER = ['guide', 'cookbook', 'pitfalls', 'subinterpreters', 'reliability',
         'misuse', 'performance', 'pybind11', 'installing', 'compile_time',
         'api']


def title_and_summary(path):
  title, summary = os.path.basename(path), ''
  with open(path, encoding='utf-8') as f:
    lines = f.read().split('\n')
  for i, line in enumerate(lines):
    if line.startswith('# '):
      title = re.sub(r'\s*\{#[^}]*\}\s*$', '', line[2:]).strip()
      para = []
      for rest in lines[i + 1:]:
        if rest.strip() == '' and para:
          break
        if rest.strip() == '' or rest.startswith('#'):
          continue
        para.append(rest.strip())
      summary = ' '.join(para)
      break
  summary = re.split(r'(?<=[.:])\s', summary, maxsplit=1)[0]
  return title, summary


def slug(text):
  """The anchor GitHub gives a heading (so the pages' links work there too)."""
  text = re.sub(r'\s*\{#[^}]*\}\s*$', '', text).strip().lower()
  text = re.sub(r'[^\w\- ]', '', text)
  return text.replace(' ', '-')


def code_span(match):
  """A code span Doxygen would misread: a global-scope `::name` (taken as a
  link request), `&name;` (an entity) or `<name>` (an HTML tag), even inside
  backticks."""
  code = match.group(1)
  if not re.search(r'(^|\s)::|&\w+;|<[A-Za-z]', code):
    return match.group(0)
  code = code.replace('\\', '\\\\').replace('@', '\\@')
  code = code.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')
  code = re.sub(r'(^|\s)::', r'\1\\::', code)
  return '<code>%s</code>' % code


def prepare_page(source, destination, name):
  """Copies a docs/ page for Doxygen.

  Headings get explicit anchors named <page>-<GitHub anchor> (Doxygen 1.9
  neither generates GitHub's anchors nor scopes anchors per page); links to
  those anchors and to the other pages are rewritten to match. A code span
  broken over two lines, which Doxygen does not join, is put on one line.
  """
  with open(source, encoding='utf-8') as f:
    lines = f.read().split('\n')
  out = []
  fenced = False
  pending = None
  used = {}
  for line in lines:
    if pending is not None:
      line = pending + ' ' + line.lstrip()
      pending = None
    if line.lstrip().startswith('```'):
      fenced = not fenced
      out.append(line)
      continue
    if fenced:
      out.append(line)
      continue
    if line.replace('\\`', '').count('`') % 2 == 1:
      pending = line
      continue
    heading = re.match(r'^(#{1,6}) (.*?)\s*$', line)
    if heading and '{#' not in heading.group(2):
      level, text = heading.groups()
      anchor = slug(text)
      if anchor in used:  # GitHub numbers repeated headings
        used[anchor] += 1
        anchor = '%s-%d' % (anchor, used[anchor])
      else:
        used[anchor] = 0
      label = name if level == '#' else '%s-%s' % (name, anchor)
      line = '%s %s {#%s}' % (level, text, label)

    def link(match):
      target = match.group(1)
      page, _, anchor = target.partition('#')
      if page == '':
        return '](#%s-%s)' % (name, anchor)
      if page.endswith('.md') and '/' not in page:
        base = page[:-3]
        return '](#%s)' % (base + '-' + anchor if anchor else base)
      return match.group(0)

    line = re.sub(r'\]\(([^)\s]+)\)', link, line)
    line = re.sub(r'`([^`]+)`', code_span, line)
    out.append(line)
  if pending is not None:
    out.append(pending)
  with open(destination, 'w', encoding='utf-8') as f:
    f.write('\n'.join(out))


def write_index(pages, headers, version, path):
  out = ['# pyscope %s' % version, '',
         'pyscope makes the CPython embedding rules into C++ scopes: every '
         'pairing the C API leaves to discipline is a guard whose destructor '
         'cannot be forgotten, and misuse is a compile error where C++ can '
         'express it and a one-paragraph diagnostic where it cannot.', '',
         '## Pages', '']
  for page in pages:
    title, summary = title_and_summary(page)
    name = os.path.basename(page)
    out.append('- [%s](#%s)%s' % (title, os.path.splitext(name)[0],
                                  ' — ' + summary if summary else ''))
  out += ['', '## Headers', '',
          'Every public name is documented once, in its header:', '']
  for header in headers:
    out.append('- pyscope/%s' % os.path.basename(header))
  out.append('')
  with open(path, 'w', encoding='utf-8') as f:
    f.write('\n'.join(out))


def main(argv):
  parser = argparse.ArgumentParser()
  parser.add_argument('--doxygen', required=True)
  parser.add_argument('--python', default=sys.executable)
  parser.add_argument('--source-root', required=True)
  parser.add_argument('--build-include', required=True)
  parser.add_argument('--version', required=True)
  parser.add_argument('--output', required=True)
  parser.add_argument('--stamp', required=True)
  argv = argv[1:]
  check_args = []
  if '--' in argv:
    check_args = argv[argv.index('--') + 1:]
    argv = argv[:argv.index('--')]
  args = parser.parse_args(argv)

  src = os.path.abspath(args.source_root)
  out = os.path.abspath(args.output)
  os.makedirs(out, exist_ok=True)
  docs = os.path.join(src, 'docs')
  found = {os.path.splitext(os.path.basename(p))[0]: p
           for p in glob.glob(os.path.join(docs, '*.md'))}
  pages = [found.pop(name) for name in ORDER if name in found]
  pages += [found[name] for name in sorted(found)]
  include = os.path.join(src, 'include')
  headers = sorted(glob.glob(os.path.join(include, 'pyscope', '*.h')))
  version_h = os.path.join(args.build_include, 'pyscope', 'version.h')
  headers.append(version_h)
  index = os.path.join(out, 'index.md')
  write_index(pages, headers, args.version, index)
  pages_dir = os.path.join(out, 'pages')
  os.makedirs(pages_dir, exist_ok=True)
  prepared = []
  for page in pages:
    copy = os.path.join(pages_dir, os.path.basename(page))
    prepare_page(page, copy, os.path.splitext(os.path.basename(page))[0])
    prepared.append(copy)

  with open(os.path.join(docs, 'Doxyfile.in'), encoding='utf-8') as f:
    config = f.read()
  quote = lambda p: '"%s"' % p
  filter_cmd = '%s %s' % (args.python,
                          os.path.join(src, 'scripts', 'doxygen_filter.py'))
  values = {
      'VERSION': args.version,
      'OUTPUT': quote(out),
      'INPUT': ' '.join(quote(p) for p in [index] + prepared + headers),
      'MAINPAGE': quote(index),
      'LOGFILE': quote(os.path.join(out, 'warnings.log')),
      'FILTER': filter_cmd,
      'STRIP': ' '.join(quote(p) for p in [include, pages_dir, out,
                                            args.build_include]),
      'STRIP_INC': ' '.join(quote(p) for p in [include, args.build_include]),
  }
  for key, value in values.items():
    config = config.replace('@%s@' % key, value)
  doxyfile = os.path.join(out, 'Doxyfile')
  with open(doxyfile, 'w', encoding='utf-8') as f:
    f.write(config)
  log = os.path.join(out, 'warnings.log')
  if os.path.exists(log):
    os.remove(log)
  result = subprocess.run([args.doxygen, doxyfile], cwd=out,
                          capture_output=True, text=True)
  warnings = ''
  if os.path.exists(log):
    with open(log, encoding='utf-8') as f:
      warnings = f.read().strip()
  if result.returncode != 0 or warnings or result.stderr.strip():
    sys.stderr.write(result.stdout + result.stderr)
    sys.stderr.write(warnings + '\n')
    count = len([l for l in warnings.split('\n') if l.strip()])
    sys.exit('build_docs: Doxygen exited with %d, wrote %d warning lines '
             'and %d lines to stderr (the header filter\'s errors go there)'
             % (result.returncode, count, len(result.stderr.splitlines())))
  html = os.path.join(out, 'html')
  with open(os.path.join(html, 'index.html'), encoding='utf-8') as f:
    front = f.read()
  for page in pages:
    title, _ = title_and_summary(page)
    if title.replace('&', '&amp;') not in front:
      sys.exit('build_docs: the index page does not link %s (%s)' %
               (os.path.basename(page), title))
  with open(args.stamp, 'w', encoding='utf-8') as f:
    f.write('%s\n' % os.path.join(html, 'index.html'))
  print('build_docs: %d pages, %d headers, no warnings: %s' %
        (len(pages), len(headers), os.path.join(html, 'index.html')))
  if check_args:
    sys.stdout.flush()
    return subprocess.run(
        [args.python, os.path.join(src, 'scripts', 'check_doc_names.py'),
         '--xml-index', os.path.join(out, 'xml', 'index.xml')] +
        check_args).returncode
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv))
