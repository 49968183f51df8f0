// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Scenarios 1-5: GIL acquisition and release, raw C API against pyscope.
// The pybind11 variants are in pybind11_bench.cc.

#include <vector>

#include "bench_cases.h"
#include "bench_util.h"
#include "pyscope/pyscope.h"

namespace pyscope_bench {

// Scenario 1: acquire/release on a thread that already holds the GIL.

void S1NestedRawGilState(benchmark::State& state) {
  EnsureRuntime();
  PyGILState_STATE outer = PyGILState_Ensure();
  for (auto _ : state) {
    PyGILState_STATE inner = PyGILState_Ensure();
    PyGILState_Release(inner);
  }
  PyGILState_Release(outer);
}

void S1NestedPyscope(benchmark::State& state) {
  EnsureRuntime();
  pyscope::GILGuard outer;
  for (auto _ : state) {
    pyscope::GILGuard inner;
  }
}

// The GIL is held by something pyscope did not do (a host's
// PyGILState_Ensure, or Python code calling into C++): the guard borrows it.
void S1NestedPyscopeBorrowed(benchmark::State& state) {
  EnsureRuntime();
  PyGILState_STATE outer = PyGILState_Ensure();
  for (auto _ : state) {
    pyscope::GILGuard inner;
  }
  PyGILState_Release(outer);
}

// Scenario 2: the main thread (it has a thread state) takes the free GIL.

void S2UncontendedRawGilState(benchmark::State& state) {
  EnsureRuntime();
  for (auto _ : state) {
    PyGILState_STATE gil = PyGILState_Ensure();
    PyGILState_Release(gil);
  }
}

// The cheapest raw sequence: the caller keeps its thread state itself.
void S2UncontendedRawRestore(benchmark::State& state) {
  EnsureRuntime();
  PyThreadState* tstate = MainThreadState();
  for (auto _ : state) {
    PyEval_RestoreThread(tstate);
    PyEval_SaveThread();
  }
}

void S2UncontendedPyscope(benchmark::State& state) {
  EnsureRuntime();
  for (auto _ : state) {
    pyscope::GILGuard gil;
  }
}

// Scenario 3: a native thread with no thread state. PyGILState_Ensure
// creates one and PyGILState_Release deletes it, every time.

void S3FirstRawGilState(benchmark::State& state) {
  EnsureRuntime();
  TimeFirstOnNewThread(state, [] {
    PyGILState_STATE gil = PyGILState_Ensure();
    PyGILState_Release(gil);
  });
}

void S3FirstPyscope(benchmark::State& state) {
  EnsureRuntime();
  TimeFirstOnNewThread(state, [] { pyscope::GILGuard gil; });
}

void S3RepeatedRawGilState(benchmark::State& state) {
  EnsureRuntime();
  TimeRepeatedOnNewThread(
      state, [] {},
      [] {
        PyGILState_STATE gil = PyGILState_Ensure();
        PyGILState_Release(gil);
      },
      [] {});
}

// A hand-written cache: the thread creates its thread state once and
// attaches/detaches it (what pyscope does for a native thread).
void S3RepeatedRawCached(benchmark::State& state) {
  EnsureRuntime();
  PyThreadState* tstate = nullptr;
  TimeRepeatedOnNewThread(
      state, [&] { tstate = PyThreadState_New(MainInterpreter()); },
      [&] {
        PyEval_RestoreThread(tstate);
        PyEval_SaveThread();
      },
      [&] {
        PyEval_RestoreThread(tstate);
        PyThreadState_Clear(tstate);
        PyThreadState_DeleteCurrent();
      });
}

void S3RepeatedPyscope(benchmark::State& state) {
  EnsureRuntime();
  TimeRepeatedOnNewThread(
      state, [] { pyscope::GILGuard warm_up; }, [] { pyscope::GILGuard gil; },
      [] {});
}

void S3ThreadLifetimeRawGilState(benchmark::State& state) {
  EnsureRuntime();
  TimeThreadLifetime(state, [] {
    PyGILState_STATE gil = PyGILState_Ensure();
    PyGILState_Release(gil);
  });
}

void S3ThreadLifetimePyscope(benchmark::State& state) {
  EnsureRuntime();
  TimeThreadLifetime(state, [] { pyscope::GILGuard gil; });
}

// Scenario 4: release the GIL for a scope and take it back.

void S4AllowThreadsRaw(benchmark::State& state) {
  EnsureRuntime();
  PyGILState_STATE gil = PyGILState_Ensure();
  for (auto _ : state) {
    Py_BEGIN_ALLOW_THREADS
    Py_END_ALLOW_THREADS
  }
  PyGILState_Release(gil);
}

void S4AllowThreadsPyscope(benchmark::State& state) {
  EnsureRuntime();
  pyscope::GILGuard gil;
  for (auto _ : state) {
    pyscope::AllowThreads nogil;
  }
}

// Scenario 5: several native threads each acquire, make a small Python
// call, release.

void S5ContendedRawGilState(benchmark::State& state) {
  EnsureRuntime();
  TimeContended(
      state, [](int) {},
      [](int) {
        PyGILState_STATE gil = PyGILState_Ensure();
        CallSmall();
        PyGILState_Release(gil);
      },
      [](int) {});
}

void S5ContendedRawCached(benchmark::State& state) {
  EnsureRuntime();
  std::vector<PyThreadState*> tstates(state.range(0));
  TimeContended(
      state,
      [&](int index) { tstates[index] = PyThreadState_New(MainInterpreter()); },
      [&](int index) {
        PyEval_RestoreThread(tstates[index]);
        CallSmall();
        PyEval_SaveThread();
      },
      [&](int index) {
        PyEval_RestoreThread(tstates[index]);
        PyThreadState_Clear(tstates[index]);
        PyThreadState_DeleteCurrent();
      });
}

void S5ContendedPyscope(benchmark::State& state) {
  EnsureRuntime();
  TimeContended(
      state, [](int) { pyscope::GILGuard warm_up; },
      [](int) {
        pyscope::GILGuard gil;
        CallSmall();
      },
      [](int) {});
}

}  // namespace pyscope_bench
