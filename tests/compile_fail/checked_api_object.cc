// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Rule (pyscope/checked_api.h): an object protocol function needs an attached
// thread state. Under Clang -Wthread-safety a call with no guard in scope, or
// inside AllowThreads, does not compile and the diagnostic names the function;
// inside a GILGuard it compiles. With GCC the header changes nothing: all three
// contexts compile.
//
// expect[clang]: calling function 'PyObject_GetAttrString' requires holding GIL 'gil' exclusively
// expect[gcc]: <compiles>
// flags[clang]: -Wthread-safety -Werror
// variants: NO_GUARD ALLOW_THREADS

#include "checked_api_context.h"

void Test(PyObject* obj) {
  PYSCOPE_CF_CONTEXT;
  PyObject* attr = PyObject_GetAttrString(obj, "real");
  Py_XDECREF(attr);
}
