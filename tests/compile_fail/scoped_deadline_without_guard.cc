// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Rule: a ScopedDeadline limits the Python code of a thread attached to an
// interpreter, so it needs the GIL: without a guard in scope it does not
// compile (Clang -Wthread-safety); at run time it is kFailedPrecondition.
//
// expect[clang]: calling function 'ScopedDeadline' requires holding GIL 'gil' exclusively
// flags: -Wthread-safety -Werror

#include "pyscope/deadline.h"
#include "pyscope/gil.h"

void Test() {
#if defined(PYSCOPE_COMPILE_FAIL_CONTROL)
  pyscope::GILGuard gil;
#endif
  pyscope::ScopedDeadline deadline(absl::Seconds(1));
}
