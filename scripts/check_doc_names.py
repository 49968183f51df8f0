#!/usr/bin/env python3
# Copyright 2026 The pyscope Authors.
# SPDX-License-Identifier: Apache-2.0
"""Checks that every public name of pyscope is in the generated docs index.

The public names are read from the headers themselves, with Clang (its AST
of a translation unit that includes every public header): classes and
structs, their public members and fields, functions, enums and their
enumerators, variables and type aliases of namespace pyscope (not
pyscope::detail or pyscope::internal_annotations), declared in
include/pyscope/*.h, plus the PYSCOPE_ macros those headers define (not
PYSCOPE_INTERNAL_*). Each must appear in Doxygen's XML index (which lists
documented entities only) under the same qualified name.

Usage (docs/meson.build runs it as a test):
  check_doc_names.py --clang clang++ --xml-index DIR/xml/index.xml
      --include DIR [--include DIR...] -- <compile flags>
Exits 77 (skipped) when clang++ is not available.
"""

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

SKIP_NAMESPACES = {'detail', 'internal_annotations'}
# The export attribute of the compiled core: not for user code.
SKIP_MACROS = {'PYSCOPE_CORE_API'}
DECL_KINDS = {
    'CXXRecordDecl', 'FunctionDecl', 'CXXMethodDecl', 'CXXConstructorDecl',
    'EnumDecl', 'EnumConstantDecl', 'VarDecl', 'FieldDecl', 'TypeAliasDecl',
    'TypedefDecl', 'FunctionTemplateDecl', 'ClassTemplateDecl'
}


def json_objects(text):
  decoder = json.JSONDecoder()
  pos = 0
  while True:
    while pos < len(text) and text[pos] in ' \t\r\n':
      pos += 1
    if pos >= len(text):
      return
    # -ast-dump-filter prints "Dumping <name>:" before each object.
    if not text.startswith('{', pos):
      pos = text.index('\n', pos) + 1
      continue
    obj, pos = decoder.raw_decode(text, pos)
    yield obj


def public_headers(include_dirs):
  headers = []
  for d in include_dirs:
    headers += glob.glob(os.path.join(d, 'pyscope', '*.h'))
  # checked_api_decls.h (generated) re-declares C API functions only.
  return sorted(set(os.path.realpath(h) for h in headers
                    if os.path.basename(h) != 'checked_api_decls.h'))


class Walker:

  def __init__(self, headers):
    self.headers = set(headers)
    self.names = set()
    self.file = None

  def location_file(self, node):
    loc = node.get('loc', {})
    f = (loc.get('file') or loc.get('expansionLoc', {}).get('file') or
         loc.get('spellingLoc', {}).get('file'))
    if f:
      self.file = os.path.realpath(f)
    return self.file

  def walk(self, node, scope, public=True):
    kind = node.get('kind')
    name = node.get('name', '')
    f = self.location_file(node)
    if node.get('isImplicit'):
      return
    if kind == 'NamespaceDecl':
      if name in SKIP_NAMESPACES or name == '':
        return
      for child in node.get('inner', []):
        self.walk(child, scope + [name])
      return
    in_public_header = f in self.headers
    if kind in ('CXXRecordDecl', 'ClassTemplateDecl', 'EnumDecl'):
      if kind == 'ClassTemplateDecl':
        inner = [c for c in node.get('inner', [])
                 if c.get('kind') == 'CXXRecordDecl']
        node = inner[0] if inner else node
      if (public and in_public_header and name and
          (node.get('completeDefinition') or kind == 'EnumDecl')):
        self.names.add('::'.join(scope + [name]))
      if not node.get('completeDefinition') and kind != 'EnumDecl':
        return
      access = 'private' if node.get('tagUsed') == 'class' else 'public'
      for child in node.get('inner', []):
        if child.get('kind') == 'AccessSpecDecl':
          access = child.get('access')
          continue
        self.walk(child, scope + [name], public and access == 'public')
      return
    if kind not in DECL_KINDS or not public or not in_public_header:
      return
    if not name or node.get('explicitlyDeleted'):
      return
    if name.startswith('operator'):
      return
    # Clang names a class template's constructor "C<T>"; Doxygen "C".
    name = re.sub(r'<.*>$', '', name)
    if kind == 'FunctionTemplateDecl':
      inner = [c for c in node.get('inner', []) if 'Decl' in c.get('kind', '')]
      if inner and inner[0].get('explicitlyDeleted'):
        return
    self.names.add('::'.join(scope + [name]))


def header_macros(headers):
  names = set()
  for h in headers:
    with open(h, encoding='utf-8') as f:
      for match in re.finditer(r'^#define (PYSCOPE_[A-Z0-9_]+)', f.read(),
                               re.M):
        name = match.group(1)
        if (name.startswith('PYSCOPE_INTERNAL_') or name.endswith('_H_') or
            name in SKIP_MACROS):
          continue
        names.add(name)
  return names


def documented_names(xml_index):
  """Qualified names in Doxygen's XML index. An enumerator is listed beside
  its enum (S::value for S::E::value), so both forms are recorded."""
  root = ET.parse(xml_index).getroot()
  names = set()
  for compound in root.findall('compound'):
    cname = compound.findtext('name')
    scoped = compound.get('kind') in ('class', 'struct', 'union', 'namespace')
    if scoped:
      names.add(cname)
    enum = None
    for member in compound.findall('member'):
      mname = member.findtext('name')
      mkind = member.get('kind')
      if mkind == 'define':
        names.add(mname)
      elif scoped:
        if mkind == 'enum':
          enum = mname
        names.add(cname + '::' + mname)
        if mkind == 'enumvalue' and enum is not None:
          names.add('%s::%s::%s' % (cname, enum, mname))
  return names


def main(argv):
  parser = argparse.ArgumentParser()
  parser.add_argument('--clang', required=True)
  parser.add_argument('--xml-index', required=True)
  parser.add_argument('--include', action='append', required=True)
  parser.add_argument('--prelude', action='append', default=[])
  parser.add_argument('flags', nargs='*')
  args = parser.parse_args(argv[1:])
  clang = shutil.which(args.clang) or (args.clang if os.path.exists(
      args.clang) else None)
  if not clang:
    print('check_doc_names: %s not found' % args.clang)
    return 77

  headers = public_headers(args.include)
  # checked_api.h re-declares the C API from the generated
  # checked_api_decls.h: C API names, not pyscope's.
  skip = {'checked_api.h'}
  source = ''.join('#include <%s>\n' % p for p in args.prelude)
  source += ''.join('#include "pyscope/%s"\n' % os.path.basename(h)
                    for h in headers if os.path.basename(h) not in skip)
  cmd = [clang, '-x', 'c++', '-std=c++17', '-fsyntax-only', '-Xclang',
         '-ast-dump=json', '-Xclang', '-ast-dump-filter=pyscope']
  cmd += ['-I' + d for d in args.include] + args.flags + ['-']
  result = subprocess.run(cmd, input=source, capture_output=True, text=True)
  if result.returncode != 0:
    sys.exit('check_doc_names: clang failed:\n' + result.stderr[:5000])
  walker = Walker(headers)
  seen_top = set()
  for obj in json_objects(result.stdout):
    key = obj.get('id')
    if key in seen_top:
      continue
    seen_top.add(key)
    if obj.get('kind') == 'NamespaceDecl' and obj.get('name') == 'pyscope':
      walker.location_file(obj)
      for child in obj.get('inner', []):
        walker.walk(child, ['pyscope'])
  public = walker.names | header_macros(headers)

  documented = documented_names(args.xml_index)
  missing = []
  for name in sorted(public):
    if name not in documented:
      missing.append(name)
  print('check_doc_names: %d public names, %d in the docs index' %
        (len(public), len(public) - len(missing)))
  for name in missing:
    print('  not in the docs index (undocumented in its header?): ' + name)
  return 1 if missing else 0


if __name__ == '__main__':
  sys.exit(main(sys.argv))
