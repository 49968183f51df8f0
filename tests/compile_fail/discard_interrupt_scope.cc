// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Rule: a InterruptScope temporary ends at the end of the statement, so it
// covers nothing. It is [[nodiscard]]; discarding one is an error with
// -Werror (GCC: -Wunused-result, Clang: -Wunused-value).
//
// expect[gcc]: ignoring return value of 'pyscope::InterruptScope::InterruptScope(const pyscope::InterruptToken&)', declared with attribute 'nodiscard'
// expect[clang]: ignoring temporary created by a constructor declared with 'nodiscard' attribute
// flags: -Werror

#include "pyscope/gil.h"
#include "pyscope/interrupt.h"

void Test(const pyscope::InterruptToken& token) {
  pyscope::GILGuard gil;
#if defined(PYSCOPE_COMPILE_FAIL_CONTROL)
  pyscope::InterruptScope scope{token};
#else
  pyscope::InterruptScope{token};
#endif
}
