// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Scenario 8 baseline: a translation unit that includes only Python.h and
// takes the GIL the raw way. Compiled (never run) by scripts/bench_report.

#define PY_SSIZE_T_CLEAN
#include <Python.h>

int CompileCostProbe() {
  PyGILState_STATE gil = PyGILState_Ensure();
  const int initialized = Py_IsInitialized();
  PyGILState_Release(gil);
  return initialized;
}
