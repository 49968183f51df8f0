// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Rule: a ThreadOutputCapture temporary ends at the end of the statement, so it
// covers nothing. It is [[nodiscard]]; discarding one is an error with
// -Werror (GCC: -Wunused-result, Clang: -Wunused-value).
//
// expect[gcc]: ignoring return value of 'pyscope::ThreadOutputCapture::ThreadOutputCapture(pyscope::OutputSink)', declared with attribute 'nodiscard'
// expect[clang]: ignoring temporary created by a constructor declared with 'nodiscard' attribute
// flags: -Werror

#include "pyscope/gil.h"
#include "pyscope/output.h"

void Test() {
  pyscope::GILGuard gil;
#if defined(PYSCOPE_COMPILE_FAIL_CONTROL)
  pyscope::ThreadOutputCapture scope{nullptr};
#else
  pyscope::ThreadOutputCapture{nullptr};
#endif
}
