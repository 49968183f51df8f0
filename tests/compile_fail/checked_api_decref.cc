// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Rule (pyscope/checked_api.h): Py_DECREF, a static inline function (named
// _Py_DECREF before 3.11) needs an attached thread state. Under Clang
// -Wthread-safety a call with no guard in scope, or inside AllowThreads, does
// not compile and the diagnostic names the function; inside a GILGuard it
// compiles. With GCC the header changes nothing: all three contexts compile.
//
// expect[clang]: Py_DECREF' requires holding GIL 'gil'
// expect[gcc]: <compiles>
// flags[clang]: -Wthread-safety -Werror
// variants: NO_GUARD ALLOW_THREADS

#include "checked_api_context.h"

void Test(PyObject* obj) {
  PYSCOPE_CF_CONTEXT;
  Py_DECREF(obj);
}
