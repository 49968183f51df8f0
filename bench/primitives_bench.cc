// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Scenario 0: the building blocks the guards' hot paths are made of, timed
// in the same run so that docs/performance.md can explain the ratios with
// numbers from this machine (not a target, no pyscope/raw comparison).

#include <atomic>
#include <mutex>

#include "absl/synchronization/mutex.h"
#include "bench_cases.h"
#include "bench_util.h"
#include "pyscope/detail/core.h"

namespace pyscope_bench {
namespace {

std::atomic<int> flag{0};
std::atomic<int> gate{1};

}  // namespace

// pyscope's per-thread record: an out-of-line call into libpyscope.so that
// reads a thread_local with a dynamic initializer (general-dynamic TLS).
void S0ThisThread(benchmark::State& state) {
  for (auto _ : state) {
    benchmark::DoNotOptimize(&pyscope::detail::ThisThread());
  }
}

// The attach gate's handshake: a sequentially consistent store (an xchg on
// x86), a load, and a release store.
void S0SeqCstHandshake(benchmark::State& state) {
  for (auto _ : state) {
    flag.store(1, std::memory_order_seq_cst);
    benchmark::DoNotOptimize(gate.load(std::memory_order_seq_cst));
    flag.store(0, std::memory_order_release);
  }
}

// The same without the full fence (what an asymmetric barrier would leave
// on the fast path).
void S0ReleaseAcquireHandshake(benchmark::State& state) {
  for (auto _ : state) {
    flag.store(1, std::memory_order_relaxed);
    benchmark::DoNotOptimize(gate.load(std::memory_order_acquire));
    flag.store(0, std::memory_order_release);
  }
}

// The CPython look-ups the cold attach path makes besides attaching: which
// thread state PyGILState associates with this thread, and which thread
// state is current.
void S0GilStateLookup(benchmark::State& state) {
  EnsureRuntime();
  for (auto _ : state) {
    PyThreadState* tstate = PyGILState_GetThisThreadState();
    benchmark::DoNotOptimize(PyThreadState_GetInterpreter(tstate));
  }
}

void S0CurrentThreadState(benchmark::State& state) {
  EnsureRuntime();
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        pyscope::detail::compat::CurrentThreadStateUnchecked());
  }
}

// Uncontended lock + unlock, with Abseil's default settings (the build's
// Abseil decides whether deadlock detection runs).
void S0AbslMutexPair(benchmark::State& state) {
  absl::Mutex mu;
  for (auto _ : state) {
    mu.Lock();
    mu.Unlock();
  }
}

void S0StdMutexPair(benchmark::State& state) {
  std::mutex mu;
  for (auto _ : state) {
    mu.lock();
    mu.unlock();
  }
}

// The first absl::Mutex lock on a new thread (Abseil creates its per-thread
// identity there).
void S0FirstAbslLockOnNewThread(benchmark::State& state) {
  absl::Mutex mu;
  TimeFirstOnNewThread(state, [&mu] {
    mu.Lock();
    mu.Unlock();
  });
}

void S0FirstStdLockOnNewThread(benchmark::State& state) {
  std::mutex mu;
  TimeFirstOnNewThread(state, [&mu] {
    mu.lock();
    mu.unlock();
  });
}

}  // namespace pyscope_bench
