// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Rule: ThreadStateSwap needs the GIL (PyThreadState_Swap's precondition), so
// constructing one with no guard in scope does not compile (Clang
// -Wthread-safety); at run time it would be Misuse::kSwapWithoutGil.
//
// expect[clang]: calling function 'ThreadStateSwap' requires holding GIL 'gil' exclusively
// flags: -Wthread-safety -Werror

#include "pyscope/gil.h"
#include "pyscope/thread_state_swap.h"

void Test(PyThreadState* tstate) {
#if defined(PYSCOPE_COMPILE_FAIL_CONTROL)
  pyscope::GILGuard gil;
#endif
  pyscope::ThreadStateSwap swap(tstate);
}
