// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Rule: inside an AllowThreads scope the GIL is released, so calling a
// PYSCOPE_REQUIRES_GIL function there does not compile (Clang
// -Wthread-safety). The correct form re-takes the GIL with a nested GILGuard.
//
// expect[clang]: calling function 'AppendAnswer' requires holding GIL 'gil' exclusively
// flags: -Wthread-safety -Werror

#include "pyscope/gil.h"

void AppendAnswer(PyObject* list) PYSCOPE_REQUIRES_GIL;

void Test(PyObject* list) {
  pyscope::GILGuard gil;
  AppendAnswer(list);
  {
    pyscope::AllowThreads nogil;
#if defined(PYSCOPE_COMPILE_FAIL_CONTROL)
    pyscope::GILGuard again;
#endif
    AppendAnswer(list);
  }
  AppendAnswer(list);
}
