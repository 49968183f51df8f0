// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Rule: a ThreadOutputCapture cannot be allocated with `new`: it is a scope,
// and a heap one could outlive or escape the GILGuard scope it belongs to.
//
// expect[gcc]: use of deleted function 'static void* pyscope::ThreadOutputCapture::operator new(std::size_t)'
// expect[clang]: call to deleted function 'operator new'

#include "pyscope/gil.h"
#include "pyscope/output.h"

void Test() {
  pyscope::GILGuard gil;
#if defined(PYSCOPE_COMPILE_FAIL_CONTROL)
  pyscope::ThreadOutputCapture on_stack(nullptr);
#else
  auto* on_heap = new pyscope::ThreadOutputCapture(nullptr);
  static_cast<void>(on_heap);
#endif
}
