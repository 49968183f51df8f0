#!/usr/bin/env python3
# Copyright 2026 The pyscope Authors.
# SPDX-License-Identifier: Apache-2.0
"""Prints each directory given that the dynamic loader does not search.

Usage (the build runs it; see meson.build): needs_rpath.py DIR...

A directory is searched by default when it is one of glibc's trusted system
directories (ld.so --list-diagnostics, or /lib, /usr/lib and their 64-bit
and multiarch forms) or is listed in /etc/ld.so.conf (with its includes),
compared after resolving symbolic links. Everything else needs a run path
(or LD_LIBRARY_PATH) for a program to find the libraries in it.
"""

import glob
import os
import re
import subprocess
import sys


def trusted_dirs():
  dirs = []
  try:
    out = subprocess.run(['ld.so', '--list-diagnostics'], capture_output=True,
                         text=True, check=False).stdout
    dirs = re.findall(r'^path\.system_dirs\[[^]]*\]="([^"]*)"', out, re.M)
  except OSError:
    pass
  if not dirs:
    multiarch = []
    try:
      triplet = subprocess.run(['gcc', '-print-multiarch'],
                               capture_output=True, text=True,
                               check=False).stdout.strip()
      if triplet:
        multiarch = ['/lib/' + triplet, '/usr/lib/' + triplet]
    except OSError:
      pass
    dirs = multiarch + ['/lib', '/usr/lib', '/lib64', '/usr/lib64']
  return dirs


def conf_dirs(path, seen):
  if path in seen or not os.path.isfile(path):
    return []
  seen.add(path)
  dirs = []
  with open(path, encoding='utf-8', errors='replace') as f:
    for line in f:
      line = line.split('#', 1)[0].strip()
      if not line:
        continue
      if line.startswith('include '):
        pattern = line.split(None, 1)[1]
        if not os.path.isabs(pattern):
          pattern = os.path.join(os.path.dirname(path), pattern)
        for included in sorted(glob.glob(pattern)):
          dirs += conf_dirs(included, seen)
      elif line.startswith('hwcap '):
        continue
      else:
        dirs += line.replace(',', ' ').replace(':', ' ').split()
  return dirs


def main(argv):
  searched = {os.path.realpath(d) for d in trusted_dirs()}
  searched |= {os.path.realpath(d) for d in conf_dirs('/etc/ld.so.conf', set())}
  for d in argv[1:]:
    if os.path.realpath(d) not in searched:
      print(d)
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv))
