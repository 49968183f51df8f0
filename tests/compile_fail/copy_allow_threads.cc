// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Rule: copying an AllowThreads is rejected. A guard's lifetime is its C++
// scope: a copy would end the pairing twice, a moved-from guard never.
//
// expect[gcc]: use of deleted function 'pyscope::AllowThreads::AllowThreads(const pyscope::AllowThreads&)'
// expect[clang]: call to deleted constructor of 'pyscope::AllowThreads'

#include "pyscope/gil.h"
#include "pyscope/thread_state_swap.h"

void Test() {
  pyscope::AllowThreads a;
#if defined(PYSCOPE_COMPILE_FAIL_CONTROL)
  pyscope::AllowThreads b;
#else
  pyscope::AllowThreads b(a);
#endif
}
