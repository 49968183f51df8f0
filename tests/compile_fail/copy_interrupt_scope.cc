// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Rule: copying a InterruptScope is rejected: its lifetime is its C++ scope.
//
// expect[gcc]: use of deleted function 'pyscope::InterruptScope::InterruptScope(const pyscope::InterruptScope&)'
// expect[clang]: call to deleted constructor of 'pyscope::InterruptScope'

#include "pyscope/gil.h"
#include "pyscope/interrupt.h"

void Test(const pyscope::InterruptToken& token) {
  pyscope::GILGuard gil;
  pyscope::InterruptScope a(token);
#if defined(PYSCOPE_COMPILE_FAIL_CONTROL)
  pyscope::InterruptScope b(token);
#else
  pyscope::InterruptScope b(a);
#endif
}
