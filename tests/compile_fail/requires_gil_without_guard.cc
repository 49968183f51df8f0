// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Rule: a PYSCOPE_REQUIRES_GIL function called with no guard in scope does
// not compile under Clang's thread-safety analysis (GCC has no such analysis).
//
// expect[clang]: calling function 'AppendAnswer' requires holding GIL 'gil' exclusively
// flags: -Wthread-safety -Werror

#include "pyscope/gil.h"

void AppendAnswer(PyObject* list) PYSCOPE_REQUIRES_GIL;

void Test(PyObject* list) {
#if defined(PYSCOPE_COMPILE_FAIL_CONTROL)
  pyscope::GILGuard gil;
#endif
  AppendAnswer(list);
}
