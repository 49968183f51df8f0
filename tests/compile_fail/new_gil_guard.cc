// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Rule: a GILGuard cannot be allocated with `new` (nor with std::make_unique,
// which uses it): a heap guard could outlive or escape its scope.
//
// expect[gcc]: use of deleted function 'static void* pyscope::GILGuard::operator new(std::size_t)'
// expect[clang]: call to deleted function 'operator new'

#include "pyscope/gil.h"
#include "pyscope/thread_state_swap.h"

void Test() {
#if defined(PYSCOPE_COMPILE_FAIL_CONTROL)
  pyscope::GILGuard on_stack;
#else
  auto* on_heap = new pyscope::GILGuard;
  static_cast<void>(on_heap);
#endif
}
