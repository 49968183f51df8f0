// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Rule: copying a ThreadStateSwap is rejected. A guard's lifetime is its C++
// scope: a copy would end the pairing twice, a moved-from guard never.
//
// expect[gcc]: use of deleted function 'pyscope::ThreadStateSwap::ThreadStateSwap(const pyscope::ThreadStateSwap&)'
// expect[clang]: call to deleted constructor of 'pyscope::ThreadStateSwap'

#include "pyscope/gil.h"
#include "pyscope/thread_state_swap.h"

void Test(PyThreadState* tstate) {
  pyscope::ThreadStateSwap a(tstate);
#if defined(PYSCOPE_COMPILE_FAIL_CONTROL)
  pyscope::ThreadStateSwap b(tstate);
#else
  pyscope::ThreadStateSwap b(a);
#endif
}
