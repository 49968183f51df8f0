// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Rule: copying a GILGuard is rejected. A guard's lifetime is its C++ scope: a
// copy would end the pairing twice, a moved-from guard never.
//
// expect[gcc]: use of deleted function 'pyscope::GILGuard::GILGuard(const pyscope::GILGuard&)'
// expect[clang]: call to deleted constructor of 'pyscope::GILGuard'

#include "pyscope/gil.h"
#include "pyscope/thread_state_swap.h"

void Test() {
  pyscope::GILGuard a;
#if defined(PYSCOPE_COMPILE_FAIL_CONTROL)
  pyscope::GILGuard b;
#else
  pyscope::GILGuard b(a);
#endif
}
