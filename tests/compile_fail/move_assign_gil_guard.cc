// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Rule: move-assigning a GILGuard is rejected. A guard's lifetime is its C++
// scope: a copy would end the pairing twice, a moved-from guard never.
//
// expect[gcc]: use of deleted function 'pyscope::GILGuard& pyscope::GILGuard::operator=(pyscope::GILGuard&&)'
// expect[clang]: overload resolution selected deleted operator '='

#include <utility>

#include "pyscope/gil.h"
#include "pyscope/thread_state_swap.h"

void Test() {
  pyscope::GILGuard a;
  pyscope::GILGuard b;
#if defined(PYSCOPE_COMPILE_FAIL_CONTROL)
  static_cast<void>(a);
  static_cast<void>(b);
#else
  b = std::move(a);
#endif
}
