// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Scenario 8: the same translation unit through pyscope/pyscope.h.
// Compiled (never run) by scripts/bench_report.

#include "pyscope/pyscope.h"

int CompileCostProbe() {
  pyscope::GILGuard gil;
  return Py_IsInitialized();
}
