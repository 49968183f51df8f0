// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Rule: moving a ThreadStateSwap is rejected. A guard's lifetime is its C++
// scope: a copy would end the pairing twice, a moved-from guard never.
//
// expect[gcc]: use of deleted function 'pyscope::ThreadStateSwap::ThreadStateSwap(pyscope::ThreadStateSwap&&)'
// expect[clang]: call to deleted constructor of 'pyscope::ThreadStateSwap'

#include <utility>

#include "pyscope/gil.h"
#include "pyscope/thread_state_swap.h"

void Test(PyThreadState* tstate) {
  pyscope::ThreadStateSwap a(tstate);
#if defined(PYSCOPE_COMPILE_FAIL_CONTROL)
  pyscope::ThreadStateSwap b(tstate);
#else
  pyscope::ThreadStateSwap b(std::move(a));
#endif
}
