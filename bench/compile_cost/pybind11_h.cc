// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Scenario 8: the same translation unit through pybind11/embed.h (the
// header an embedding program includes). Compiled (never run) by
// scripts/bench_report.

#include <pybind11/embed.h>

int CompileCostProbe() {
  pybind11::gil_scoped_acquire gil;
  return Py_IsInitialized();
}
