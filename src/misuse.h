// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Misuse reports: one table of the kinds (name, headline), the paragraph,
// and the replaceable handler (pyscope/diagnostics.h is the public face).

#ifndef PYSCOPE_SRC_MISUSE_H_
#define PYSCOPE_SRC_MISUSE_H_

#include <string>

#include "pyscope/detail/core.h"
#include "pyscope/diagnostics.h"
#include "pyscope/source_location.h"

namespace pyscope::detail {

// "file:line in function()".
std::string Site(const SourceLocation& where);

// "GILGuard", "AllowThreads", ...
const char* GuardName(GuardKind kind);

// Reports a misuse through the installed handler: one paragraph naming the
// misuse, the guard, where it was created and the calling thread, then
// `detail`. Returns if the handler returns (the default one aborts).
void ReportMisuse(Misuse misuse, GuardKind kind, const SourceLocation& where,
                  const char* detail);

}  // namespace pyscope::detail

#endif  // PYSCOPE_SRC_MISUSE_H_
