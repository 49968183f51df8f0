// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Rule: moving a ScopedProfile is rejected: its lifetime is its C++ scope,
// which restores the previous profile function exactly once.
//
// expect[gcc]: use of deleted function 'pyscope::ScopedProfile::ScopedProfile(pyscope::ScopedProfile&&)'
// expect[clang]: call to deleted constructor of 'pyscope::ScopedProfile'

#include <utility>

#include "pyscope/gil.h"
#include "pyscope/trace.h"

void Test() {
  pyscope::GILGuard gil;
  pyscope::ScopedProfile a([](const pyscope::TraceEvent&) {});
#if defined(PYSCOPE_COMPILE_FAIL_CONTROL)
  pyscope::ScopedProfile b([](const pyscope::TraceEvent&) {});
#else
  pyscope::ScopedProfile b(std::move(a));
#endif
}
