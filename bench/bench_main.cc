// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// The benchmark binary: every variant of every scenario, registered so that
// the variants of one scenario run one after another against the same
// runtime. scripts/bench_report runs it and writes docs/performance.md.
//
// Python is initialized once, lazily, by the first benchmark that needs it
// (bench_util.h); scenario 7 stops that runtime to cycle its own and runs
// last.

#include <benchmark/benchmark.h>

#include <cstdio>

#include "bench_cases.h"
#include "bench_util.h"
#include "pyscope/detail/compat.h"

namespace pyscope_bench {
namespace {

using benchmark::RegisterBenchmark;

// Benchmarks that start a thread per iteration but time only a sub-
// microsecond part of it would start hundreds of thousands of threads to
// fill the minimum time; a fixed count keeps them to a few seconds.
constexpr int kThreadsPerRun = 2000;

void RegisterAll() {
  constexpr bool kOwnGil = pyscope::detail::compat::kHasPerInterpreterGil;

  RegisterBenchmark("S0_blocks/this_thread", S0ThisThread);
  RegisterBenchmark("S0_blocks/seq_cst_handshake", S0SeqCstHandshake);
  RegisterBenchmark("S0_blocks/release_acquire_handshake",
                    S0ReleaseAcquireHandshake);
  RegisterBenchmark("S0_blocks/gilstate_lookup", S0GilStateLookup);
  RegisterBenchmark("S0_blocks/current_thread_state", S0CurrentThreadState);
  RegisterBenchmark("S0_blocks/absl_mutex_pair", S0AbslMutexPair);
  RegisterBenchmark("S0_blocks/std_mutex_pair", S0StdMutexPair);
  RegisterBenchmark("S0_first_lock/absl_mutex", S0FirstAbslLockOnNewThread)
      ->UseManualTime()
      ->Iterations(kThreadsPerRun);
  RegisterBenchmark("S0_first_lock/std_mutex", S0FirstStdLockOnNewThread)
      ->UseManualTime()
      ->Iterations(kThreadsPerRun);

  RegisterBenchmark("S1_nested/raw_gilstate", S1NestedRawGilState);
  RegisterBenchmark("S1_nested/pyscope", S1NestedPyscope);
  RegisterBenchmark("S1_nested/pyscope_borrowed", S1NestedPyscopeBorrowed);
#if PYSCOPE_BENCH_HAVE_PYBIND11
  RegisterBenchmark("S1_nested/pybind11", S1NestedPybind11);
#endif

  RegisterBenchmark("S2_uncontended/raw_gilstate", S2UncontendedRawGilState);
  RegisterBenchmark("S2_uncontended/raw_restore", S2UncontendedRawRestore);
  RegisterBenchmark("S2_uncontended/pyscope", S2UncontendedPyscope);
#if PYSCOPE_BENCH_HAVE_PYBIND11
  RegisterBenchmark("S2_uncontended/pybind11", S2UncontendedPybind11);
#endif

  RegisterBenchmark("S3_first/raw_gilstate", S3FirstRawGilState)
      ->UseManualTime()
      ->Iterations(kThreadsPerRun);
  RegisterBenchmark("S3_first/pyscope", S3FirstPyscope)
      ->UseManualTime()
      ->Iterations(kThreadsPerRun);
#if PYSCOPE_BENCH_HAVE_PYBIND11
  RegisterBenchmark("S3_first/pybind11", S3FirstPybind11)
      ->UseManualTime()
      ->Iterations(kThreadsPerRun);
#endif
  RegisterBenchmark("S3_repeated/raw_gilstate", S3RepeatedRawGilState);
  RegisterBenchmark("S3_repeated/raw_cached", S3RepeatedRawCached);
  RegisterBenchmark("S3_repeated/pyscope", S3RepeatedPyscope);
#if PYSCOPE_BENCH_HAVE_PYBIND11
  RegisterBenchmark("S3_repeated/pybind11", S3RepeatedPybind11);
#endif
  RegisterBenchmark("S3_thread_lifetime/raw_gilstate",
                    S3ThreadLifetimeRawGilState)
      ->UseRealTime();
  RegisterBenchmark("S3_thread_lifetime/pyscope", S3ThreadLifetimePyscope)
      ->UseRealTime();
#if PYSCOPE_BENCH_HAVE_PYBIND11
  RegisterBenchmark("S3_thread_lifetime/pybind11", S3ThreadLifetimePybind11)
      ->UseRealTime();
#endif

  RegisterBenchmark("S4_allow_threads/raw", S4AllowThreadsRaw);
  RegisterBenchmark("S4_allow_threads/pyscope", S4AllowThreadsPyscope);
#if PYSCOPE_BENCH_HAVE_PYBIND11
  RegisterBenchmark("S4_allow_threads/pybind11", S4AllowThreadsPybind11);
#endif

  for (int threads : {2, 4}) {
    const std::string scenario =
        "S5_contended_" + std::to_string(threads) + "t";
    auto add = [&](const char* variant, void (*fn)(benchmark::State&)) {
      RegisterBenchmark((scenario + "/" + variant).c_str(), fn)
          ->Arg(threads)
          ->UseManualTime()
          ->Unit(benchmark::kMicrosecond);
    };
    add("raw_gilstate", S5ContendedRawGilState);
    add("raw_cached", S5ContendedRawCached);
    add("pyscope", S5ContendedPyscope);
#if PYSCOPE_BENCH_HAVE_PYBIND11
    add("pybind11", S5ContendedPybind11);
#endif
  }

  RegisterBenchmark("S6_create_end/raw_legacy", S6CreateEndRawLegacy)
      ->Unit(benchmark::kMicrosecond)
      ->UseRealTime();
  if (kOwnGil) {
    RegisterBenchmark("S6_create_end/raw_own_gil", S6CreateEndRawOwnGil)
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
  }
#if PYSCOPE_BENCH_HAVE_SUB_INTERPRETER
  RegisterBenchmark("S6_create_end/pyscope_legacy", S6CreateEndPyscopeLegacy)
      ->Unit(benchmark::kMicrosecond)
      ->UseRealTime();
  if (kOwnGil) {
    RegisterBenchmark("S6_create_end/pyscope_isolated",
                      S6CreateEndPyscopeIsolated)
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
  }
#endif
  for (int own_gil : {0, 1}) {
    if (own_gil && !kOwnGil) continue;
    const std::string scenario =
        own_gil ? "S6_enter_leave_own_gil" : "S6_enter_leave";
    RegisterBenchmark((scenario + "/raw_create_delete").c_str(),
                      S6EnterLeaveRawCreateDelete)
        ->Arg(own_gil);
    RegisterBenchmark((scenario + "/raw_cached").c_str(), S6EnterLeaveRawCached)
        ->Arg(own_gil);
#if PYSCOPE_BENCH_HAVE_SUB_INTERPRETER
    RegisterBenchmark((scenario + "/pyscope").c_str(), S6EnterLeavePyscope)
        ->Arg(own_gil);
#endif
  }
  if (kOwnGil) {
    // Own-GIL entries while another thread runs Python in the main
    // interpreter (compare with S6_enter_leave_own_gil).
    RegisterBenchmark("S6_own_gil_main_busy/raw_cached",
                      S6OwnGilMainBusyRawCached)
        ->UseRealTime();
#if PYSCOPE_BENCH_HAVE_SUB_INTERPRETER
    RegisterBenchmark("S6_own_gil_main_busy/pyscope", S6OwnGilMainBusyPyscope)
        ->UseRealTime();
#endif
  }
  RegisterBenchmark("S6_switch/raw_create_swap_delete",
                    S6SwitchRawCreateSwapDelete);
  RegisterBenchmark("S6_switch/raw_cached_swap", S6SwitchRawCachedSwap);
#if PYSCOPE_BENCH_HAVE_SUB_INTERPRETER
  RegisterBenchmark("S6_switch/pyscope", S6SwitchPyscope);
#endif
  for (int count : {1, 2}) {
    const std::string suffix = "_" + std::to_string(count);
    if (kOwnGil) {
      RegisterBenchmark(("S6_parallel/raw_own_gil" + suffix).c_str(),
                        S6ParallelRawOwnGil)
          ->Arg(count)
          ->UseManualTime()
          ->Unit(benchmark::kMillisecond);
#if PYSCOPE_BENCH_HAVE_SUB_INTERPRETER
      RegisterBenchmark(("S6_parallel/pyscope_isolated" + suffix).c_str(),
                        S6ParallelPyscopeIsolated)
          ->Arg(count)
          ->UseManualTime()
          ->Unit(benchmark::kMillisecond);
#endif
    }
    RegisterBenchmark(("S6_parallel/raw_shared_gil" + suffix).c_str(),
                      S6ParallelRawSharedGil)
        ->Arg(count)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
  }

  // Scenario 7 stops the shared runtime: keep it last.
  RegisterBenchmark("S7_runtime_cycle/raw", S7RuntimeCycleRaw)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  RegisterBenchmark("S7_runtime_cycle/pyscope", S7RuntimeCyclePyscope)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
#if PYSCOPE_BENCH_HAVE_PYBIND11
  RegisterBenchmark("S7_runtime_cycle/pybind11", S7RuntimeCyclePybind11)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
#endif
}

}  // namespace
}  // namespace pyscope_bench

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("python", PY_VERSION);
#if PYSCOPE_BENCH_HAVE_PYBIND11
  benchmark::AddCustomContext("pybind11", "yes");
  pyscope_bench::InstallPybind11Hooks();
#else
  benchmark::AddCustomContext("pybind11", "no");
#endif
#if PYSCOPE_BENCH_HAVE_SUB_INTERPRETER
  benchmark::AddCustomContext("pyscope_sub_interpreter", "yes");
#else
  benchmark::AddCustomContext("pyscope_sub_interpreter", "no");
#endif
  pyscope_bench::RegisterAll();
  benchmark::RunSpecifiedBenchmarks();
  pyscope_bench::StopRuntime();
  benchmark::Shutdown();
  return 0;
}
