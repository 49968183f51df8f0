// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Rule: A ThreadStateSwap temporary is destroyed at the end of the statement,
// so it guards nothing. Guards are [[nodiscard]]; discarding one is an error
// with -Werror (GCC: -Wunused-result, Clang: -Wunused-value).
//
// expect[gcc]: ignoring return value of 'pyscope::ThreadStateSwap::ThreadStateSwap(PyThreadState*, pyscope::SourceLocation)', declared with attribute 'nodiscard'
// expect[clang]: ignoring temporary created by a constructor declared with 'nodiscard' attribute
// flags: -Werror

#include "pyscope/gil.h"
#include "pyscope/thread_state_swap.h"

void Test(PyThreadState* tstate) {
#if defined(PYSCOPE_COMPILE_FAIL_CONTROL)
  pyscope::ThreadStateSwap swap{tstate};
#else
  pyscope::ThreadStateSwap{tstate};
#endif
}
