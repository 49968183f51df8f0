// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Shared pieces of the benchmark binary: the one Python runtime that the
// GIL benchmarks share, native worker threads, and the small Python call
// used by the contended scenarios.
//
// Every variant of a scenario (raw C API, pyscope, pybind11) runs in this
// one binary against the same runtime, so their ratios are fair.

#ifndef PYSCOPE_BENCH_BENCH_UTIL_H_
#define PYSCOPE_BENCH_BENCH_UTIL_H_

#include <benchmark/benchmark.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "pyscope/detail/compat.h"

namespace pyscope_bench {

// Starts the shared runtime (a pyscope::ScopedRuntime with the default,
// isolated options) if it is not live. Cheap when it is. Leaves the calling
// thread detached, as ScopedRuntime does. Must be called on the main thread
// (the benchmark functions run there).
void EnsureRuntime();

// Finalizes the shared runtime if it is live, for the benchmarks that
// initialize and finalize Python themselves.
void StopRuntime();

// Registers `hook` to run on the main thread right after the shared runtime
// started (detached) or was finalized. pybind11 sets up and forgets its
// per-interpreter internals there.
void AddAfterStartHook(void (*hook)());
void AddAfterStopHook(void (*hook)());

// The main thread's thread state in the shared runtime (the one CPython
// created at initialization). Valid while the runtime is live.
PyThreadState* MainThreadState();

// The main interpreter of the shared runtime.
PyInterpreterState* MainInterpreter();

// Calls the Python function `def small(): return 1` of the shared runtime's
// __main__ and drops the result. Requires the main interpreter's GIL.
void CallSmall();

// Returns to the main thread state after Py_EndInterpreter on a thread that
// was detached before it entered the ended interpreter, and detaches again.
// Before 3.12 Py_EndInterpreter returns with the (shared) GIL still held and
// no thread state; from 3.12 it returns with no GIL held (each interpreter's
// GIL is released or destroyed with it).
void DetachAfterEndInterpreter(PyThreadState* main_tstate);

// Creates an interpreter with its own GIL and allocator
// (Py_NewInterpreterFromConfig, CPython 3.12+) and returns its thread state,
// attached, as Py_NewInterpreter does; null on failure or before 3.12.
PyThreadState* NewInterpreterWithOwnGil();

// Seconds elapsed since `start` on the steady clock.
inline double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
      .count();
}

// Runs `fn` on a new native thread (no Python thread state) and joins it.
template <typename Fn>
void RunOnNewThread(Fn&& fn) {
  std::thread thread(std::forward<Fn>(fn));
  thread.join();
}

// A fixed set of native worker threads that run one task together: Run()
// hands `task(index)` to every worker and returns when all have finished.
// The threads live as long as the pool, so per-thread caches (pyscope's
// thread states, a raw variant's own thread state) stay warm across rounds.
class WorkerPool {
 public:
  explicit WorkerPool(int threads);
  ~WorkerPool();

  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Runs `task` on every worker and waits; returns the wall-clock seconds
  // from handing it out to the last worker finishing.
  double Run(const std::function<void(int)>& task);

  int size() const { return static_cast<int>(threads_.size()); }

 private:
  void Loop(int index);

  std::mutex mu_;
  std::condition_variable start_;
  std::condition_variable done_;
  const std::function<void(int)>* task_ = nullptr;
  uint64_t round_ = 0;
  int pending_ = 0;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

// Scenario 3, first acquisition: per iteration, a new native thread runs
// `op` once; only `op` is timed (register with UseManualTime()).
template <typename Op>
void TimeFirstOnNewThread(benchmark::State& state, Op op) {
  for (auto _ : state) {
    double seconds = 0;
    RunOnNewThread([&] {
      const auto start = std::chrono::steady_clock::now();
      op();
      seconds = SecondsSince(start);
    });
    state.SetIterationTime(seconds);
  }
}

// Scenario 3, whole thread: per iteration, a new native thread runs `op`
// once and exits (creation, the acquisition and the thread's exit, where
// pyscope frees its cached thread state, are all timed).
template <typename Op>
void TimeThreadLifetime(benchmark::State& state, Op op) {
  for (auto _ : state) RunOnNewThread(op);
}

// Scenario 3, repeated acquisitions: the timing loop itself runs on a new
// native thread, after `warm_up` (which may create a cached thread state)
// and before `cool_down`.
template <typename WarmUp, typename Op, typename CoolDown>
void TimeRepeatedOnNewThread(benchmark::State& state, WarmUp warm_up, Op op,
                             CoolDown cool_down) {
  RunOnNewThread([&] {
    warm_up();
    for (auto _ : state) op();
    cool_down();
  });
}

// Operations per worker thread per iteration in the contended scenario.
inline constexpr int kContendedOps = 500;

// Scenario 5: state.range(0) native threads each run `op(thread_index)`
// kContendedOps times per iteration (register with UseManualTime()). The
// iteration time is the wall time of the round; the "ops" counter says how
// many operations it contained.
template <typename Setup, typename Op, typename Teardown>
void TimeContended(benchmark::State& state, Setup setup, Op op,
                   Teardown teardown) {
  const int threads = static_cast<int>(state.range(0));
  WorkerPool pool(threads);
  pool.Run(setup);
  const std::function<void(int)> round = [&op](int index) {
    for (int i = 0; i < kContendedOps; ++i) op(index);
  };
  for (auto _ : state) state.SetIterationTime(pool.Run(round));
  pool.Run(teardown);
  state.counters["ops"] = threads * kContendedOps;
}

}  // namespace pyscope_bench

#endif  // PYSCOPE_BENCH_BENCH_UTIL_H_
