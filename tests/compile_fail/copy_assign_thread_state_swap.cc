// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Rule: copy-assigning a ThreadStateSwap is rejected. A guard's lifetime is its
// C++ scope: a copy would end the pairing twice, a moved-from guard never.
//
// expect[gcc]: use of deleted function 'pyscope::ThreadStateSwap& pyscope::ThreadStateSwap::operator=(const pyscope::ThreadStateSwap&)'
// expect[clang]: overload resolution selected deleted operator '='

#include "pyscope/gil.h"
#include "pyscope/thread_state_swap.h"

void Test(PyThreadState* tstate) {
  pyscope::ThreadStateSwap a(tstate);
  pyscope::ThreadStateSwap b(tstate);
#if defined(PYSCOPE_COMPILE_FAIL_CONTROL)
  static_cast<void>(a);
  static_cast<void>(b);
#else
  b = a;
#endif
}
