// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Rule: a ScopedDeadline temporary is destroyed (disarmed) at the end of the
// statement, so it limits nothing. It is [[nodiscard]]; discarding one is an
// error with -Werror.
//
// expect[gcc]: ignoring return value of 'pyscope::ScopedDeadline::ScopedDeadline(absl::
// expect[clang]: ignoring temporary created by a constructor declared with 'nodiscard' attribute
// flags: -Werror

#include "pyscope/deadline.h"
#include "pyscope/gil.h"

void Test() {
  pyscope::GILGuard gil;
#if defined(PYSCOPE_COMPILE_FAIL_CONTROL)
  pyscope::ScopedDeadline deadline{absl::Seconds(1)};
#else
  pyscope::ScopedDeadline{absl::Seconds(1)};
#endif
}
