// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Rule: a ScopedTrace cannot be allocated with `new`: a heap scope could
// outlive the thread state it installed the trace function on.
//
// expect[gcc]: use of deleted function 'static void* pyscope::ScopedTrace::operator new(std::size_t)'
// expect[clang]: call to deleted function 'operator new'

#include "pyscope/gil.h"
#include "pyscope/trace.h"

void Test() {
  pyscope::GILGuard gil;
#if defined(PYSCOPE_COMPILE_FAIL_CONTROL)
  pyscope::ScopedTrace on_stack([](const pyscope::TraceEvent&) {});
#else
  auto* on_heap = new pyscope::ScopedTrace([](const pyscope::TraceEvent&) {});
  static_cast<void>(on_heap);
#endif
}
