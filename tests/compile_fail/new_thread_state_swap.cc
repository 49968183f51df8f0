// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Rule: a ThreadStateSwap cannot be allocated with `new` (nor with
// std::make_unique, which uses it): a heap guard could outlive or escape its
// scope.
//
// expect[gcc]: use of deleted function 'static void* pyscope::ThreadStateSwap::operator new(std::size_t)'
// expect[clang]: call to deleted function 'operator new'

#include "pyscope/gil.h"
#include "pyscope/thread_state_swap.h"

void Test(PyThreadState* tstate) {
#if defined(PYSCOPE_COMPILE_FAIL_CONTROL)
  pyscope::ThreadStateSwap on_stack(tstate);
#else
  auto* on_heap = new pyscope::ThreadStateSwap(tstate);
  static_cast<void>(on_heap);
#endif
}
