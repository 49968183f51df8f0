// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// pybind11's gil_scoped_acquire / gil_scoped_release / scoped_interpreter
// for scenarios 1-5 and 7. The GIL scenarios run against the runtime that
// pyscope started (pybind11's GIL guards only need an initialized
// interpreter); scenario 7 runs while no runtime is live.

#include <pybind11/embed.h>

#include "bench_cases.h"
#include "bench_util.h"

namespace py = pybind11;

namespace pyscope_bench {
namespace {

// pybind11 keeps its per-interpreter "internals" in a process-wide static
// and frees it only in its own finalize_interpreter(). After the shared
// runtime (or a raw cycle) finalized Python, that pointer refers to the old
// interpreter: drop it the same way so that the next runtime starts clean.
void ForgetPybind11Internals() {
  py::detail::internals**& internals = py::detail::get_internals_pp();
  if (internals != nullptr && *internals != nullptr) {
    delete *internals;
    *internals = nullptr;
  }
}

// Sets up pybind11's internals on the main thread, as an embedding program
// does by using pybind11 there first. pybind11 2.10 must not create them
// on a thread without a thread state: get_internals() then records the
// temporary PyGILState thread state it used, which is deleted right after,
// and the next gil_scoped_acquire on that thread uses freed memory.
void SetUpPybind11Internals() { py::gil_scoped_acquire gil; }

}  // namespace

void InstallPybind11Hooks() {
  AddAfterStartHook(&SetUpPybind11Internals);
  AddAfterStopHook(&ForgetPybind11Internals);
}

void S1NestedPybind11(benchmark::State& state) {
  EnsureRuntime();
  py::gil_scoped_acquire outer;
  for (auto _ : state) {
    py::gil_scoped_acquire inner;
  }
}

void S2UncontendedPybind11(benchmark::State& state) {
  EnsureRuntime();
  for (auto _ : state) {
    py::gil_scoped_acquire gil;
  }
}

void S3FirstPybind11(benchmark::State& state) {
  EnsureRuntime();
  TimeFirstOnNewThread(state, [] { py::gil_scoped_acquire gil; });
}

void S3RepeatedPybind11(benchmark::State& state) {
  EnsureRuntime();
  TimeRepeatedOnNewThread(
      state, [] { py::gil_scoped_acquire warm_up; },
      [] { py::gil_scoped_acquire gil; }, [] {});
}

void S3ThreadLifetimePybind11(benchmark::State& state) {
  EnsureRuntime();
  TimeThreadLifetime(state, [] { py::gil_scoped_acquire gil; });
}

void S4AllowThreadsPybind11(benchmark::State& state) {
  EnsureRuntime();
  py::gil_scoped_acquire gil;
  for (auto _ : state) {
    py::gil_scoped_release nogil;
  }
}

void S5ContendedPybind11(benchmark::State& state) {
  EnsureRuntime();
  TimeContended(
      state, [](int) {},
      [](int) {
        py::gil_scoped_acquire gil;
        CallSmall();
      },
      [](int) {});
}

// Scenario 7 with the same PyConfig as the raw variant (pyscope's isolated
// defaults), through pybind11's PyConfig constructor.
void S7RuntimeCyclePybind11(benchmark::State& state) {
  StopRuntime();
  for (auto _ : state) {
    PyConfig config;
    PyConfig_InitIsolatedConfig(&config);
    config.parse_argv = 0;
    config.install_signal_handlers = 0;
    py::scoped_interpreter python(&config, 0, nullptr,
                                  /*add_program_dir_to_path=*/false);
  }
}

}  // namespace pyscope_bench
