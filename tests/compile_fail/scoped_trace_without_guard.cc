// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Rule: installing a trace function needs the GIL (PyEval_SetTrace's
// precondition), so a ScopedTrace with no guard in scope does not compile
// (Clang -Wthread-safety); at run time it is kFailedPrecondition.
//
// expect[clang]: calling function 'ScopedTrace' requires holding GIL 'gil' exclusively
// flags: -Wthread-safety -Werror

#include "pyscope/gil.h"
#include "pyscope/trace.h"

void Test() {
#if defined(PYSCOPE_COMPILE_FAIL_CONTROL)
  pyscope::GILGuard gil;
#endif
  pyscope::ScopedTrace trace([](const pyscope::TraceEvent&) {});
}
