// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Rule: copying a ThreadOutputCapture is rejected: its lifetime is its C++
// scope.
//
// expect[gcc]: use of deleted function 'pyscope::ThreadOutputCapture::ThreadOutputCapture(const pyscope::ThreadOutputCapture&)'
// expect[clang]: call to deleted constructor of 'pyscope::ThreadOutputCapture'

#include "pyscope/gil.h"
#include "pyscope/output.h"

void Test() {
  pyscope::GILGuard gil;
  pyscope::ThreadOutputCapture a(nullptr);
#if defined(PYSCOPE_COMPILE_FAIL_CONTROL)
  pyscope::ThreadOutputCapture b(nullptr);
#else
  pyscope::ThreadOutputCapture b(a);
#endif
}
