#!/usr/bin/env python3
# Copyright 2026 The pyscope Authors.
# SPDX-License-Identifier: Apache-2.0
"""Generates checked_api_decls.h for pyscope/checked_api.h.

Reads the CPython C API from the headers of the CPython being built against
(Clang's JSON AST dump of a translation unit that includes Python.h), and
writes a re-declaration of every function declared under the Python include
directories that needs an attached thread state, annotated with
PYSCOPE_REQUIRES_GIL. Under `clang++ -Wthread-safety` a call to one of them
outside a pyscope::GILGuard scope, or inside an AllowThreads scope, is then a
compile error naming the function.

Nothing here lists C API functions to annotate: the list is whatever the
headers declare. The only hand-written list is ALLOWED below: the functions
the CPython documentation says may be called without an attached thread
state (before initialization, or without holding the GIL).

Usage (the build runs it; see meson.build):
  gen_checked_api.py --clang clang++ --output checked_api_decls.h \
      [--depfile F] [--annotations-include DIR] -- <Python compile flags>

Prints one line with the counts, e.g.
  pyscope checked_api: CPython 3.12.1: 1234 functions annotated ...
"""

import argparse
import collections
import fnmatch
import json
import os
import re
import subprocess
import sys
import tempfile

# Functions that are legal without an attached thread state, each with the
# documentation that says so. Patterns use fnmatch syntax. `since` /
# `before` bound the CPython versions (minor numbers of 3.x) an entry applies
# to, where the documented rule changed.
#
# Pre-initialization functions are allowed as a whole: Clang's analysis
# cannot tell "before Py_Initialize" from "after, without a guard", and
# before initialization no thread state can exist at all.
Allowed = collections.namedtuple('Allowed', 'pattern doc why since before')


def _allow(pattern, doc, why, since=0, before=99):
  return Allowed(pattern, doc, why, since, before)


_INIT = 'https://docs.python.org/3/c-api/init.html'
_CONFIG = 'https://docs.python.org/3/c-api/init_config.html'
_MEMORY = 'https://docs.python.org/3/c-api/memory.html'
_SYS = 'https://docs.python.org/3/c-api/sys.html'
_EXC = 'https://docs.python.org/3/c-api/exceptions.html'
_IMPORT = 'https://docs.python.org/3/c-api/import.html'
_CONV = 'https://docs.python.org/3/c-api/conversion.html'
_VERYHIGH = 'https://docs.python.org/3/c-api/veryhigh.html'

ALLOWED = [
    # --- Python Initialization Configuration (PEP 587): plain C structures
    # filled in before Py_InitializeFromConfig.
    _allow('PyConfig_*', _CONFIG + '#pyconfig',
           'configuration structure, used before initialization'),
    _allow('PyPreConfig_*', _CONFIG + '#pypreconfig',
           'pre-initialization structure'),
    _allow('PyStatus_*', _CONFIG + '#pystatus',
           'status values of the initialization functions'),
    _allow('Py_ExitStatusException', _CONFIG + '#c.Py_ExitStatusException',
           'handles a PyStatus; no interpreter needed'),
    _allow('PyWideStringList_*', _CONFIG + '#pywidestringlist',
           'lists of wide strings inside PyConfig'),
    _allow('Py_PreInitialize*', _CONFIG + '#preinitialize-python-with-pypreconfig',
           'pre-initialization'),
    _allow('Py_Initialize*', _INIT + '#c.Py_Initialize',
           'initializes the interpreter; the caller has no thread state yet'),
    _allow('Py_IsInitialized', _INIT + '#c.Py_IsInitialized',
           'listed under "Before Python Initialization": informative'),
    _allow('Py_Main', _VERYHIGH + '#c.Py_Main',
           'the main program: initializes and finalizes by itself'),
    _allow('Py_BytesMain', _VERYHIGH + '#c.Py_BytesMain',
           'the main program: initializes and finalizes by itself'),
    # --- "Before Python Initialization": configuration functions.
    _allow('PyImport_AppendInittab', _IMPORT + '#c.PyImport_AppendInittab',
           '"should be called before Py_Initialize()"'),
    _allow('PyImport_ExtendInittab', _IMPORT + '#c.PyImport_ExtendInittab',
           '"should be called before Py_Initialize()"'),
    _allow('PyInitFrozenExtensions', _INIT + '#before-python-initialization',
           'listed under "Before Python Initialization"'),
    _allow('Py_SetProgramName', _INIT + '#c.Py_SetProgramName',
           'pre-initialization configuration (deprecated)'),
    _allow('Py_SetPythonHome', _INIT + '#c.Py_SetPythonHome',
           'pre-initialization configuration (deprecated)'),
    _allow('Py_SetPath', _INIT + '#c.Py_SetPath',
           'pre-initialization configuration (deprecated)'),
    _allow('Py_SetStandardStreamEncoding',
           _INIT + '#c.Py_SetStandardStreamEncoding',
           'pre-initialization configuration (deprecated)'),
    _allow('PySys_AddWarnOption', _SYS + '#c.PySys_AddWarnOption',
           'listed under "Before Python Initialization"'),
    _allow('PySys_AddXOption', _SYS + '#c.PySys_AddXOption',
           'listed under "Before Python Initialization"'),
    _allow('PySys_ResetWarnOptions', _SYS + '#c.PySys_ResetWarnOptions',
           'listed under "Before Python Initialization"'),
    _allow('PySys_AddAuditHook', _SYS + '#c.PySys_AddAuditHook',
           '"This function is safe to call before Py_Initialize()"'),
    # --- "Before Python Initialization": informative functions.
    _allow('Py_GetVersion', _INIT + '#c.Py_GetVersion',
           'informative; static string'),
    _allow('Py_GetPlatform', _INIT + '#c.Py_GetPlatform',
           'informative; static string'),
    _allow('Py_GetCopyright', _INIT + '#c.Py_GetCopyright',
           'informative; static string'),
    _allow('Py_GetCompiler', _INIT + '#c.Py_GetCompiler',
           'informative; static string'),
    _allow('Py_GetBuildInfo', _INIT + '#c.Py_GetBuildInfo',
           'informative; static string'),
    # --- Memory: the raw domain and the allocator configuration.
    _allow('PyMem_Raw*', _MEMORY + '#raw-memory-interface',
           '"the GIL does not need to be held"'),
    _allow('PyMem_GetAllocator', _MEMORY + '#c.PyMem_GetAllocator',
           'listed under "Before Python Initialization"'),
    _allow('PyMem_SetAllocator', _MEMORY + '#c.PyMem_SetAllocator',
           'listed under "Before Python Initialization"'),
    _allow('PyMem_SetupDebugHooks', _MEMORY + '#c.PyMem_SetupDebugHooks',
           'listed under "Before Python Initialization"'),
    _allow('PyObject_GetArenaAllocator',
           _MEMORY + '#c.PyObject_GetArenaAllocator',
           'listed under "Before Python Initialization"'),
    _allow('PyObject_SetArenaAllocator',
           _MEMORY + '#c.PyObject_SetArenaAllocator',
           'listed under "Before Python Initialization"'),
    # --- Locale utilities.
    _allow('Py_DecodeLocale', _SYS + '#c.Py_DecodeLocale',
           'listed under "Before Python Initialization": utilities'),
    # --- Thread state and the GIL.
    _allow('PyGILState_Ensure', _INIT + '#c.PyGILState_Ensure',
           'acquires: "can be called ... regardless of the current state"'),
    _allow('PyGILState_Check', _INIT + '#c.PyGILState_Check',
           '"can be called from any thread at any time"'),
    _allow('PyGILState_GetThisThreadState',
           _INIT + '#c.PyGILState_GetThisThreadState',
           'reads this thread\'s auto thread state; takes no lock'),
    _allow('PyEval_RestoreThread', _INIT + '#c.PyEval_RestoreThread',
           'acquires the GIL'),
    _allow('PyEval_AcquireThread', _INIT + '#c.PyEval_AcquireThread',
           'acquires the GIL'),
    _allow('PyEval_AcquireLock', _INIT + '#c.PyEval_AcquireLock',
           'acquires the GIL (deprecated, removed in 3.13)'),
    _allow('PyEval_InitThreads', _INIT + '#c.PyEval_InitThreads',
           'no-op since 3.9 (deprecated)'),
    _allow('PyEval_ThreadsInitialized', _INIT + '#c.PyEval_ThreadsInitialized',
           '"can be called without holding the GIL"'),
    _allow('PyThreadState_New', _INIT + '#c.PyThreadState_New',
           '"The global interpreter lock need not be held"'),
    _allow('PyThreadState_Delete', _INIT + '#c.PyThreadState_Delete',
           '"The global interpreter lock need not be held"'),
    _allow('PyThreadState_GetInterpreter',
           _INIT + '#c.PyThreadState_GetInterpreter',
           'the documented precondition is only "tstate must not be NULL" '
           '(reads a field of a thread state the caller owns)'),
    _allow('PyThreadState_GetID', _INIT + '#c.PyThreadState_GetID',
           'the documented precondition is only "tstate must not be NULL"'),
    _allow('PyInterpreterState_Main', _INIT + '#c.PyInterpreterState_Main',
           'documented with no precondition: returns the runtime\'s main '
           'interpreter, as needed for PyThreadState_New before attaching'),
    _allow('PyInterpreterState_Delete', _INIT + '#c.PyInterpreterState_Delete',
           '"The global interpreter lock need not be held"'),
    _allow('PyThreadState_Swap', _INIT + '#c.PyThreadState_Swap',
           '"The GIL does not need to be held, but will be held upon '
           'returning if tstate is non-NULL" (3.12+; before, it had to be '
           'held)', since=12),
    _allow('PyThreadState_GetUnchecked', _INIT + '#c.PyThreadState_GetUnchecked',
           'like PyThreadState_Get but returns NULL instead of failing'),
    _allow('_PyThreadState_UncheckedGet', _INIT + '#c.PyThreadState_GetUnchecked',
           'the pre-3.13 name of PyThreadState_GetUnchecked'),
    _allow('Py_AddPendingCall', _INIT + '#c.Py_AddPendingCall',
           '"doesn\'t need a current thread state to run, and it doesn\'t '
           'need the global interpreter lock"'),
    _allow('PyThread_*', _INIT + '#thread-local-storage-support',
           'portable thread primitives and TSS; independent of the GIL'),
    _allow('PyMutex_Lock', _INIT + '#before-python-initialization',
           'listed under "Before Python Initialization": synchronization',
           since=13),
    _allow('PyMutex_Unlock', _INIT + '#before-python-initialization',
           'listed under "Before Python Initialization": synchronization',
           since=13),
    # --- Finalization status.
    _allow('Py_IsFinalizing', _INIT + '#c.Py_IsFinalizing',
           'reads the runtime\'s finalizing flag'),
    _allow('_Py_IsFinalizing', _INIT + '#c.Py_IsFinalizing',
           'the pre-3.13 name of Py_IsFinalizing'),
    # --- Signals and fatal errors.
    _allow('PyErr_SetInterrupt', _EXC + '#c.PyErr_SetInterrupt',
           '"can be called without the GIL and from a C signal handler"'),
    _allow('PyErr_SetInterruptEx', _EXC + '#c.PyErr_SetInterruptEx',
           '"can be called without the GIL and from a C signal handler"'),
    _allow('Py_FatalError', _SYS + '#c.Py_FatalError',
           'ends the process; usable from any state'),
    _allow('_Py_FatalErrorFunc', _SYS + '#c.Py_FatalError',
           'what the Py_FatalError macro expands to (3.9+)'),
    # --- Pure C string utilities (no interpreter state).
    _allow('PyOS_snprintf', _CONV, 'formats into a char buffer'),
    _allow('PyOS_vsnprintf', _CONV, 'formats into a char buffer'),
    _allow('PyOS_stricmp', _CONV, 'compares C strings'),
    _allow('PyOS_mystricmp', _CONV, 'compares C strings'),
    _allow('PyOS_mystrnicmp', _CONV, 'compares C strings'),
]

# Not on the list, deliberately: Py_EncodeLocale (its result is allocated
# with PyMem_Malloc, which needs the GIL; Py_DecodeLocale uses the raw
# domain). And functions that end or hand over the attachment, which need
# the GIL to do so: PyEval_SaveThread, PyEval_ReleaseThread,
# PyEval_ReleaseLock, PyGILState_Release, PyThreadState_Clear,
# PyThreadState_DeleteCurrent (releases the GIL, so it must be held although
# the docs compare it to PyThreadState_Delete), Py_EndInterpreter,
# Py_NewInterpreter*, Py_FinalizeEx / Py_Finalize / Py_RunMain (run on the
# initializing thread with its thread state attached; with pyscope that is
# ScopedRuntime's job).


def allowed_entry(name, minor):
  for entry in ALLOWED:
    if entry.since <= minor < entry.before and fnmatch.fnmatchcase(
        name, entry.pattern):
      return entry
  return None


class Function:
  __slots__ = ('name', 'qual_type', 'static', 'inline', 'defined', 'file',
               'extern_c')

  def __init__(self, name, qual_type, static, inline, defined, file,
               extern_c):
    self.extern_c = extern_c
    self.name = name
    self.qual_type = qual_type
    self.static = static
    self.inline = inline
    self.defined = defined
    self.file = file


def run(cmd, **kwargs):
  return subprocess.run(cmd, check=False, capture_output=True, text=True,
                        **kwargs)


def collect_functions(ast, python_dirs):
  """FunctionDecls at namespace scope whose location is in python_dirs."""
  # The JSON dump names a location's file only when it differs from the
  # previous location printed, so the file is tracked across the whole walk
  # in output order.
  current = {'file': None}

  def visit_bare(loc):
    if loc and 'file' in loc:
      current['file'] = loc['file']

  def visit_loc(loc):
    if not loc:
      return current['file']
    if 'spellingLoc' in loc:
      visit_bare(loc['spellingLoc'])
      visit_bare(loc['expansionLoc'])
    else:
      visit_bare(loc)
    return current['file']

  def in_python(path):
    if not path:
      return False
    real = os.path.realpath(path)
    return any(real == d or real.startswith(d + os.sep) for d in python_dirs)

  found = collections.OrderedDict()

  def walk(node, top_level, extern_c):
    file = visit_loc(node.get('loc'))
    rng = node.get('range')
    if rng:
      visit_loc(rng.get('begin'))
      visit_loc(rng.get('end'))
    kind = node.get('kind')
    defined = False
    for child in node.get('inner', ()):
      if child.get('kind') == 'CompoundStmt':
        defined = True
      walk(child,
           top_level and kind in ('TranslationUnitDecl', 'LinkageSpecDecl'),
           extern_c or (kind == 'LinkageSpecDecl' and
                        node.get('language') == 'C'))
    if (kind == 'FunctionDecl' and top_level and not node.get('isImplicit')
        and in_python(file)):
      name = node['name']
      prev = found.get(name)
      fn = Function(name, node['type']['qualType'],
                    node.get('storageClass') == 'static',
                    bool(node.get('inline')), defined or
                    (prev is not None and prev.defined), file, extern_c)
      if prev is None or defined:
        found[name] = fn

  walk(ast, True, False)
  return list(found.values())


_TRAILING_ATTR = re.compile(r'(\s+__attribute__\(\(.*\)\))\s*$')


def split_function_type(qual_type):
  """'RET (PARAMS) ATTRS' -> (RET, '(PARAMS)', ATTRS), or None."""
  attrs = ''
  m = _TRAILING_ATTR.search(qual_type)
  if m:
    attrs = m.group(1).strip()
    qual_type = qual_type[:m.start()]
  # A va_list parameter is adjusted to a pointer to the builtin tag type,
  # which has no spelling of its own; `va_list` adjusts to the same type.
  qual_type = qual_type.replace('__va_list_tag *', 'va_list').rstrip()
  if not qual_type.endswith(')'):
    return None
  depth = 0
  for i in range(len(qual_type) - 1, -1, -1):
    c = qual_type[i]
    if c == ')':
      depth += 1
    elif c == '(':
      depth -= 1
      if depth == 0:
        ret = qual_type[:i].rstrip()
        params = qual_type[i:]
        if '(' in ret or not ret:
          return None  # returns a function pointer spelled without typedef
        return ret, params, attrs
  return None


def declaration(fn, macros):
  parts = split_function_type(fn.qual_type)
  lines = []
  is_macro = fn.name in macros
  if is_macro:
    lines.append('#pragma push_macro("%s")' % fn.name)
    lines.append('#undef %s' % fn.name)
  if parts is None:
    if fn.static:
      return None
    decl = 'decltype(%s) %s PYSCOPE_REQUIRES_GIL;' % (fn.name, fn.name)
  else:
    ret, params, attrs = parts
    prefix = 'static inline ' if fn.static else ''
    space = '' if ret.endswith('*') else ' '
    decl = '%s%s%s(%s)%s%s PYSCOPE_REQUIRES_GIL;' % (
        prefix, ret, space, fn.name, params, ' ' + attrs if attrs else '')
  lines.append(decl)
  if is_macro:
    lines.append('#pragma pop_macro("%s")' % fn.name)
  return '\n'.join(lines)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--clang', default='clang++')
  parser.add_argument('--output', required=True)
  parser.add_argument('--depfile')
  parser.add_argument('--annotations-include',
                      help='directory holding pyscope/annotations.h; when '
                      'given, the result is compiled once as a check')
  parser.add_argument('cflags', nargs='*',
                      help='compile flags for Python.h (after --)')
  args = parser.parse_args()

  python_dirs = []
  flags = list(args.cflags)
  for i, flag in enumerate(flags):
    for opt in ('-I', '-isystem'):
      if flag == opt and i + 1 < len(flags):
        python_dirs.append(flags[i + 1])
      elif flag.startswith(opt) and len(flag) > len(opt):
        python_dirs.append(flag[len(opt):])
  python_dirs = [os.path.realpath(d) for d in python_dirs]
  if not python_dirs:
    sys.exit('gen_checked_api: no -I flag for the Python headers given')

  base = [args.clang, '-x', 'c++', '-std=c++17'] + flags
  # Python.h declares different names with and without PY_SSIZE_T_CLEAN
  # (before 3.13, PyArg_ParseTuple and friends are macros over *_SizeT
  # functions when it is defined). pyscope defines it, but a translation unit
  # may include Python.h first without it, so both sets are covered.
  sources = ['#define PY_SSIZE_T_CLEAN\n#include <Python.h>\n',
             '#include <Python.h>\n']

  object_macros = set()
  functions = collections.OrderedDict()
  for source in sources:
    macros_run = run(base + ['-E', '-dM', '-'], input=source)
    if macros_run.returncode != 0:
      sys.exit('gen_checked_api: preprocessing Python.h failed:\n' +
               macros_run.stderr)
    macros = {}
    for line in macros_run.stdout.splitlines():
      m = re.match(r'#define (\w+)(\(?)\s*(.*)$', line)
      if m:
        macros[m.group(1)] = (m.group(2) == '(', m.group(3))
    object_macros |= {k for k, (function_like, _) in macros.items()
                      if not function_like}
    version_parts = tuple(int(macros[k][1]) for k in (
        'PY_MAJOR_VERSION', 'PY_MINOR_VERSION', 'PY_MICRO_VERSION'))
    version = macros.get('PY_VERSION', (False, '"?"'))[1].strip('"')
    minor = version_parts[1]

    dump = run(base + ['-fsyntax-only', '-Xclang', '-ast-dump=json', '-'],
               input=source)
    if dump.returncode != 0:
      sys.exit('gen_checked_api: AST dump of Python.h failed:\n' +
               dump.stderr)
    ast = json.loads(dump.stdout)
    del dump
    for fn in collect_functions(ast, python_dirs):
      functions.setdefault(fn.name, fn)
    del ast
  functions = list(functions.values())

  annotated, allowed, skipped = [], [], []
  for fn in sorted(functions, key=lambda f: f.name):
    entry = allowed_entry(fn.name, minor)
    if entry:
      allowed.append((fn, entry))
      continue
    if fn.static and not fn.defined:
      skipped.append((fn, 'static, never defined'))
      continue
    decl = declaration(fn, object_macros)
    if decl is None:
      skipped.append((fn, 'type not expressible: ' + fn.qual_type))
      continue
    annotated.append((fn, decl))

  n_inline = sum(1 for fn, _ in annotated if fn.static)
  out = []
  out.append('// Generated by scripts/gen_checked_api.py from the headers of '
             'CPython %s.' % version)
  out.append('// Do not edit; rebuild instead. Included by '
             'pyscope/checked_api.h.')
  out.append('//')
  out.append('// %d functions annotated with PYSCOPE_REQUIRES_GIL (%d extern, '
             '%d static inline);' % (len(annotated),
                                     len(annotated) - n_inline, n_inline))
  out.append('// %d allowed without an attached thread state (see ALLOWED '
             'in the script):' % len(allowed))
  for fn, entry in allowed:
    out.append('//   %-36s %s' % (fn.name, entry.doc))
  if skipped:
    out.append('// Not annotated:')
    for fn, why in skipped:
      out.append('//   %s: %s' % (fn.name, why))
  out.append('')
  out.append('#ifndef PYSCOPE_CHECKED_API_DECLS_H_')
  out.append('#define PYSCOPE_CHECKED_API_DECLS_H_')
  out.append('')
  out.append('#if PY_MAJOR_VERSION != %d || PY_MINOR_VERSION != %d || '
             'PY_MICRO_VERSION != %d' % version_parts)
  out.append('#error "checked_api_decls.h was generated for CPython %s; '
             'this translation unit uses other Python headers. Rebuild '
             'pyscope against the same CPython."' % version)
  out.append('#endif')
  out.append('')
  out.append('#define PYSCOPE_CHECKED_API_FUNCTION_COUNT %d' % len(annotated))
  out.append('')
  # Language linkage is part of a declaration: the redeclaration keeps the
  # original's (a few CPython headers miss their extern "C" block).
  out.append('extern "C" {')
  out.append('')
  for fn, decl in annotated:
    if fn.extern_c:
      out.append(decl)
  out.append('')
  out.append('}  // extern "C"')
  out.append('')
  cxx_linkage = [decl for fn, decl in annotated if not fn.extern_c]
  if cxx_linkage:
    out.append('// Declared by CPython outside an extern "C" block.')
    out.extend(cxx_linkage)
    out.append('')
  out.append('#endif  // PYSCOPE_CHECKED_API_DECLS_H_')
  text = '\n'.join(out) + '\n'

  if args.annotations_include:
    # Compile the result once: a re-declaration that does not match the
    # original exactly is an error here rather than in a user's build.
    with tempfile.TemporaryDirectory() as tmp:
      decls = os.path.join(tmp, 'checked_api_decls.h')
      with open(decls, 'w') as f:
        f.write(text)
      for source in sources:
        check = (source + '#include "pyscope/annotations.h"\n'
                 '#include "%s"\n' % decls)
        result = run(base + ['-I', args.annotations_include, '-fsyntax-only',
                             '-Wthread-safety', '-Werror', '-'], input=check)
        if result.returncode != 0:
          sys.exit('gen_checked_api: the generated declarations do not '
                   'compile:\n' + result.stderr[:20000])

  tmp_out = args.output + '.tmp'
  with open(tmp_out, 'w') as f:
    f.write(text)
  os.replace(tmp_out, args.output)

  if args.depfile:
    headers = set()
    for fn in functions:
      headers.add(os.path.realpath(fn.file))
    with open(args.depfile, 'w') as f:
      f.write('%s: %s\n' % (args.output.replace(' ', '\\ '), ' '.join(
          sorted(h.replace(' ', '\\ ') for h in headers))))

  print('pyscope checked_api: CPython %s: %d functions annotated '
        '(%d extern, %d static inline), %d allowed without a thread state, '
        '%d not annotated' % (version, len(annotated),
                              len(annotated) - n_inline, n_inline,
                              len(allowed), len(skipped)))


if __name__ == '__main__':
  main()
