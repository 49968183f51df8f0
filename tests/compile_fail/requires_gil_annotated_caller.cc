// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Rule: the requirement propagates: a function that calls a
// PYSCOPE_REQUIRES_GIL function must hold a guard or be annotated itself, and
// then its own callers are checked (Clang -Wthread-safety).
//
// expect[clang]: calling function 'Helper' requires holding GIL 'gil' exclusively
// flags: -Wthread-safety -Werror

#include "pyscope/gil.h"

void AppendAnswer(PyObject* list) PYSCOPE_REQUIRES_GIL;

void Helper(PyObject* list) PYSCOPE_REQUIRES_GIL { AppendAnswer(list); }

void Test(PyObject* list) {
#if defined(PYSCOPE_COMPILE_FAIL_CONTROL)
  pyscope::GILGuard gil;
#endif
  Helper(list);
}
