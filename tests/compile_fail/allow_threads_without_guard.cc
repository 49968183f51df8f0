// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Rule: AllowThreads releases the GIL, so it needs a guard (or an annotated
// caller) that holds it. Without one it does not compile (Clang
// -Wthread-safety); at run time it would be Misuse::kAllowThreadsWithoutGil.
//
// expect[clang]: releasing GIL 'gil' that was not held
// flags: -Wthread-safety -Werror

#include "pyscope/gil.h"

void Test() {
#if defined(PYSCOPE_COMPILE_FAIL_CONTROL)
  pyscope::GILGuard gil;
#endif
  pyscope::AllowThreads nogil;
}
