// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// The benchmark functions of every scenario, registered in one place
// (bench_main.cc) so that the variants of a scenario run next to each other.
// Names: "S<n>_<scenario>/<variant>"; scripts/bench_report relies on them.

#ifndef PYSCOPE_BENCH_BENCH_CASES_H_
#define PYSCOPE_BENCH_BENCH_CASES_H_

#include <benchmark/benchmark.h>

namespace pyscope_bench {

// primitives_bench.cc: scenario 0, building blocks (no targets).
void S0ThisThread(benchmark::State& state);
void S0SeqCstHandshake(benchmark::State& state);
void S0ReleaseAcquireHandshake(benchmark::State& state);
void S0GilStateLookup(benchmark::State& state);
void S0CurrentThreadState(benchmark::State& state);
void S0AbslMutexPair(benchmark::State& state);
void S0StdMutexPair(benchmark::State& state);
void S0FirstAbslLockOnNewThread(benchmark::State& state);
void S0FirstStdLockOnNewThread(benchmark::State& state);

// gil_bench.cc: scenarios 1-5, raw C API and pyscope.
void S1NestedRawGilState(benchmark::State& state);
void S1NestedPyscope(benchmark::State& state);
void S1NestedPyscopeBorrowed(benchmark::State& state);
void S2UncontendedRawGilState(benchmark::State& state);
void S2UncontendedRawRestore(benchmark::State& state);
void S2UncontendedPyscope(benchmark::State& state);
void S3FirstRawGilState(benchmark::State& state);
void S3FirstPyscope(benchmark::State& state);
void S3RepeatedRawGilState(benchmark::State& state);
void S3RepeatedRawCached(benchmark::State& state);
void S3RepeatedPyscope(benchmark::State& state);
void S3ThreadLifetimeRawGilState(benchmark::State& state);
void S3ThreadLifetimePyscope(benchmark::State& state);
void S4AllowThreadsRaw(benchmark::State& state);
void S4AllowThreadsPyscope(benchmark::State& state);
// state.range(0): number of threads.
void S5ContendedRawGilState(benchmark::State& state);
void S5ContendedRawCached(benchmark::State& state);
void S5ContendedPyscope(benchmark::State& state);

// sub_interpreter_bench.cc: scenario 6.
void S6CreateEndRawLegacy(benchmark::State& state);
void S6CreateEndRawOwnGil(benchmark::State& state);
void S6EnterLeaveRawCreateDelete(benchmark::State& state);
void S6EnterLeaveRawCached(benchmark::State& state);
void S6OwnGilMainBusyRawCached(benchmark::State& state);
void S6SwitchRawCreateSwapDelete(benchmark::State& state);
void S6SwitchRawCachedSwap(benchmark::State& state);
// state.range(0): number of interpreters (and threads) running at once.
void S6ParallelRawOwnGil(benchmark::State& state);
void S6ParallelRawSharedGil(benchmark::State& state);
#if PYSCOPE_BENCH_HAVE_SUB_INTERPRETER
void S6CreateEndPyscopeLegacy(benchmark::State& state);
void S6CreateEndPyscopeIsolated(benchmark::State& state);
void S6EnterLeavePyscope(benchmark::State& state);
void S6OwnGilMainBusyPyscope(benchmark::State& state);
void S6SwitchPyscope(benchmark::State& state);
void S6ParallelPyscopeIsolated(benchmark::State& state);
#endif

// runtime_bench.cc: scenario 7.
void S7RuntimeCycleRaw(benchmark::State& state);
void S7RuntimeCyclePyscope(benchmark::State& state);

#if PYSCOPE_BENCH_HAVE_PYBIND11
// pybind11_bench.cc: pybind11's gil_scoped_acquire / gil_scoped_release /
// scoped_interpreter for the scenarios where it has the operation.
void S1NestedPybind11(benchmark::State& state);
void S2UncontendedPybind11(benchmark::State& state);
void S3FirstPybind11(benchmark::State& state);
void S3RepeatedPybind11(benchmark::State& state);
void S3ThreadLifetimePybind11(benchmark::State& state);
void S4AllowThreadsPybind11(benchmark::State& state);
void S5ContendedPybind11(benchmark::State& state);
void S7RuntimeCyclePybind11(benchmark::State& state);
// Registers the hook that drops pybind11's internals when the shared
// runtime is finalized.
void InstallPybind11Hooks();
#endif

}  // namespace pyscope_bench

#endif  // PYSCOPE_BENCH_BENCH_CASES_H_
