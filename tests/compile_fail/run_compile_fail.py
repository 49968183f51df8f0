#!/usr/bin/env python3
# Copyright 2026 The pyscope Authors.
# SPDX-License-Identifier: Apache-2.0
"""Runs one compile-fail test: the file must not compile, for its stated reason.

A test file states in comments at its top what it expects:

  // expect[gcc]: <fragment>     the compile with g++ must fail, and the
  // expect[clang]: <fragment>   output must contain <fragment>; a compiler
  //                             without an expect line is not run
  // expect[gcc]: <compiles>     instead: every variant must compile cleanly
  // flags: <flags>              added to every compile (e.g. -Werror)
  // flags[clang]: <flags>       added for one compiler only
  // variants: A B               compile once per variant with -DPYSCOPE_CF_A,
  //                             -DPYSCOPE_CF_B (default: one compile, no -D)

Each failing compile has a control: the same file compiled with
-DPYSCOPE_COMPILE_FAIL_CONTROL, where the offending line is replaced by the
correct one, must compile without any diagnostic. That proves the failure
comes from the stated rule and from nothing else; a file that fails for
another reason is a broken test, not a pass.

Usage: run_compile_fail.py [--gxx PATH] [--clangxx PATH] FILE -- <flags>
(the flags after -- are the include flags for pyscope, Abseil and Python).
Exit status: 0 pass, 1 fail, 77 skipped (no compiler the test needs).
"""

import argparse
import os
import re
import shlex
import subprocess
import sys

_EXPECT = re.compile(r'^//\s*expect\[(gcc|clang)\]:\s*(.+?)\s*$')
_FLAGS = re.compile(r'^//\s*flags(?:\[(gcc|clang)\])?:\s*(.+?)\s*$')
_VARIANTS = re.compile(r'^//\s*variants:\s*(.+?)\s*$')
_COMPILES = '<compiles>'


def parse(path):
  expect, flags, variants = {}, {'': [], 'gcc': [], 'clang': []}, ['']
  with open(path) as f:
    for line in f:
      if not line.startswith('//'):
        if line.strip():
          break  # the header comment ends at the first code line
        continue
      m = _EXPECT.match(line)
      if m:
        expect[m.group(1)] = m.group(2)
        continue
      m = _FLAGS.match(line)
      if m:
        flags[m.group(1) or ''] += shlex.split(m.group(2))
        continue
      m = _VARIANTS.match(line)
      if m:
        variants = m.group(1).split()
  return expect, flags, variants


def compile_once(compiler, flags, path):
  cmd = [compiler, '-std=c++17', '-fsyntax-only'] + flags + [path]
  env = dict(os.environ, LC_ALL='C')  # ASCII quotes in GCC's messages
  result = subprocess.run(cmd, capture_output=True, text=True, env=env,
                          check=False)
  return cmd, result.returncode, result.stdout + result.stderr


def show(cmd, output):
  text = output if len(output) < 6000 else output[:6000] + '\n[...]'
  return '  $ %s\n%s' % (' '.join(shlex.quote(c) for c in cmd),
                         '\n'.join('  | ' + l for l in text.splitlines()))


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--gxx')
  parser.add_argument('--clangxx')
  parser.add_argument('file')
  parser.add_argument('flags', nargs='*')
  args = parser.parse_args()

  name = os.path.basename(args.file)
  expect, flags, variants = parse(args.file)
  if not expect:
    print('%s: BROKEN TEST: no "// expect[gcc|clang]:" line' % name)
    return 1
  compilers = {'gcc': args.gxx, 'clang': args.clangxx}
  failures, ran = [], 0
  for kind in ('gcc', 'clang'):
    if kind not in expect:
      continue
    compiler = compilers[kind]
    if not compiler:
      print('%s [%s]: skipped (%s not found)' % (
          name, kind, 'g++' if kind == 'gcc' else 'clang++'))
      continue
    ran += 1
    common = args.flags + flags[''] + flags[kind]
    fragment = expect[kind]

    for variant in variants:
      define = ['-DPYSCOPE_CF_' + variant] if variant else []
      label = '%s [%s%s]' % (name, kind, ' ' + variant if variant else '')
      cmd, code, out = compile_once(compiler, common + define, args.file)
      if fragment == _COMPILES:
        if code != 0 or out.strip():
          failures.append('%s: expected to compile cleanly\n%s' % (
              label, show(cmd, out)))
        else:
          print('%s: compiles, as expected' % label)
        continue
      if code == 0:
        failures.append('%s: compiled, but must fail with "%s"\n%s' % (
            label, fragment, show(cmd, out)))
      elif fragment not in out:
        failures.append('%s: failed, but without "%s" (broken test)\n%s' % (
            label, fragment, show(cmd, out)))
      else:
        print('%s: fails with "%s", as expected' % (label, fragment))

    if fragment != _COMPILES:
      cmd, code, out = compile_once(
          compiler, common + ['-DPYSCOPE_COMPILE_FAIL_CONTROL'], args.file)
      label = '%s [%s control]' % (name, kind)
      if code != 0 or out.strip():
        failures.append('%s: the control must compile cleanly (broken '
                        'test)\n%s' % (label, show(cmd, out)))
      else:
        print('%s: compiles, as expected' % label)

  for failure in failures:
    print('FAIL ' + failure)
  if failures:
    return 1
  if ran == 0:
    print('%s: skipped (no compiler for this test)' % name)
    return 77
  return 0


if __name__ == '__main__':
  sys.exit(main())
