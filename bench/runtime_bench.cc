// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Scenario 7: initialize and finalize the runtime. Runs while the shared
// runtime is down (these benchmarks stop it; the next benchmark that needs
// it starts it again).

#include <cstdio>
#include <cstdlib>

#include "bench_cases.h"
#include "bench_util.h"
#include "pyscope/pyscope.h"

namespace pyscope_bench {

// The same configuration as pyscope's default RuntimeOptions::Isolated()
// (site imported, bytecode written, no signal handlers, argv not parsed).
void S7RuntimeCycleRaw(benchmark::State& state) {
  StopRuntime();
  for (auto _ : state) {
    PyConfig config;
    PyConfig_InitIsolatedConfig(&config);
    config.parse_argv = 0;
    config.install_signal_handlers = 0;
    PyStatus status = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(status)) {
      state.SkipWithError("Py_InitializeFromConfig failed");
      break;
    }
    if (Py_FinalizeEx() != 0) {
      state.SkipWithError("Py_FinalizeEx failed");
      break;
    }
  }
}

void S7RuntimeCyclePyscope(benchmark::State& state) {
  StopRuntime();
  for (auto _ : state) {
    pyscope::ScopedRuntime python;
  }
}

}  // namespace pyscope_bench
