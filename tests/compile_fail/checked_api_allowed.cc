// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Rule (pyscope/checked_api.h): functions that the CPython documentation
// allows without an attached thread state are not annotated, so they compile
// with no guard and inside AllowThreads (the allow-list in
// scripts/gen_checked_api.py). This is a must-compile test.
//
// expect[clang]: <compiles>
// expect[gcc]: <compiles>
// flags[clang]: -Wthread-safety -Werror
// variants: NO_GUARD ALLOW_THREADS

#include <cstdio>

#include "checked_api_context.h"

void Test(PyThreadState* saved) {
  PYSCOPE_CF_CONTEXT;
  if (!Py_IsInitialized() || PyGILState_Check()) return;
  void* buffer = PyMem_RawMalloc(16);
  PyMem_RawFree(buffer);
  PyThreadState* tstate =
      PyThreadState_New(PyThreadState_GetInterpreter(saved));
  PyThreadState_Delete(tstate);
  PyConfig config;
  PyConfig_InitIsolatedConfig(&config);
  PyConfig_Clear(&config);
  std::printf("%s\n", Py_GetVersion());
}
