// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Rule (pyscope/checked_api.h): an int (PyLong) function needs an attached
// thread state. Under Clang -Wthread-safety a call with no guard in scope, or
// inside AllowThreads, does not compile and the diagnostic names the function;
// inside a GILGuard it compiles. With GCC the header changes nothing: all three
// contexts compile.
//
// expect[clang]: calling function 'PyLong_AsLong' requires holding GIL 'gil' exclusively
// expect[gcc]: <compiles>
// flags[clang]: -Wthread-safety -Werror
// variants: NO_GUARD ALLOW_THREADS

#include "checked_api_context.h"

void Test(PyObject* number) {
  PYSCOPE_CF_CONTEXT;
  long value = PyLong_AsLong(number);
  static_cast<void>(value);
}
