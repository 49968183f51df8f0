// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Instruction counts of the guards against the raw C API, for callgrind:
//
//   valgrind --tool=callgrind pyscope_icount <case> <N>
//
// runs <case> N times after the same set-up as with N = 0, so that
// (instructions at N - instructions at 0) / N is the cost of one operation,
// whatever the machine's load. scripts/bench_report --instructions runs
// every case that way and writes the ratios to docs/performance.md.
// `pyscope_icount --list` prints the cases.

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "pyscope/pyscope.h"

#if PYSCOPE_BENCH_HAVE_PYBIND11
#include <pybind11/pybind11.h>
#endif

namespace {

using pyscope::AllowThreads;
using pyscope::GILGuard;
using pyscope::ScopedRuntime;
using pyscope::SubInterpreter;
using pyscope::SubInterpreterOptions;

// Keeps the compiler from removing a loop body.
template <typename T>
void Keep(T&& value) {
  asm volatile("" : : "g"(&value) : "memory");
}

// Runs `op` n times on a new thread, after `warm_up` there (also at n = 0).
template <typename WarmUp, typename Op>
void OnWorker(long n, WarmUp warm_up, Op op) {
  std::thread worker([&] {
    warm_up();
    for (long i = 0; i < n; ++i) op();
  });
  worker.join();
}

ScopedRuntime& Runtime() {
  static ScopedRuntime* const runtime = new ScopedRuntime();
  return *runtime;
}

// --- 1. nested: the thread already holds the GIL ---

void NestedRawGilState(long n) {
  Runtime();
  std::thread worker([n] {
    PyGILState_STATE outer = PyGILState_Ensure();
    for (long i = 0; i < n; ++i) {
      PyGILState_STATE inner = PyGILState_Ensure();
      Keep(inner);
      PyGILState_Release(inner);
    }
    PyGILState_Release(outer);
  });
  worker.join();
}

void NestedPyscope(long n) {
  Runtime();
  std::thread worker([n] {
    GILGuard outer;
    for (long i = 0; i < n; ++i) {
      GILGuard inner;
      Keep(inner);
    }
  });
  worker.join();
}

#if PYSCOPE_BENCH_HAVE_PYBIND11
void NestedPybind11(long n) {
  Runtime();
  {
    GILGuard gil;  // pybind11 sets up its internals under the GIL
    pybind11::gil_scoped_acquire setup;
  }
  std::thread worker([n] {
    pybind11::gil_scoped_acquire outer;
    for (long i = 0; i < n; ++i) {
      pybind11::gil_scoped_acquire inner;
      Keep(inner);
    }
  });
  worker.join();
}
#endif

// --- 2. cold with a cached thread state: attach from nothing, detach ---

void ColdRawRestore(long n) {
  Runtime();
  std::thread worker([n] {
    PyThreadState* mine = PyThreadState_New(Runtime().main_interpreter());
    for (long i = 0; i < n; ++i) {
      PyEval_RestoreThread(mine);
      PyEval_SaveThread();
    }
    PyEval_RestoreThread(mine);
    PyThreadState_Clear(mine);
    PyThreadState_DeleteCurrent();
  });
  worker.join();
}

void ColdRawGilState(long n) {
  Runtime();
  std::thread worker([n] {
    // Keep the thread's PyGILState state alive across the loop, as a
    // host's cache would.
    PyGILState_STATE keep = PyGILState_Ensure();
    PyThreadState* mine = PyEval_SaveThread();
    for (long i = 0; i < n; ++i) {
      PyGILState_STATE state = PyGILState_Ensure();
      PyGILState_Release(state);
    }
    PyEval_RestoreThread(mine);
    PyGILState_Release(keep);
  });
  worker.join();
}

void ColdPyscope(long n) {
  Runtime();
  OnWorker(
      n, [] { GILGuard warm; },
      [] {
        GILGuard gil;
        Keep(gil);
      });
}

// --- 4. AllowThreads inside a guard ---

void AllowThreadsRaw(long n) {
  Runtime();
  std::thread worker([n] {
    GILGuard gil;
    for (long i = 0; i < n; ++i) {
      Py_BEGIN_ALLOW_THREADS
        Keep(i);
      Py_END_ALLOW_THREADS
    }
  });
  worker.join();
}

void AllowThreadsPyscope(long n) {
  Runtime();
  std::thread worker([n] {
    GILGuard gil;
    for (long i = 0; i < n; ++i) {
      AllowThreads nogil;
      Keep(nogil);
    }
  });
  worker.join();
}

// --- 6. sub-interpreter entry from a worker with a cached state ---

SubInterpreter& Sub(bool own_gil) {
  static SubInterpreter* legacy = nullptr;
  static SubInterpreter* isolated = nullptr;
  SubInterpreter*& sub = own_gil ? isolated : legacy;
  if (sub == nullptr) {
    Runtime();
    // Default(): Legacy() where there is a GIL, Py_NewInterpreter's
    // settings on the free-threaded build (as sub_interpreter_bench.cc).
    sub = new SubInterpreter(own_gil ? SubInterpreterOptions::Isolated()
                                     : SubInterpreterOptions::Default());
  }
  return *sub;
}

void SubRawCached(long n, bool own_gil) {
  SubInterpreter& sub = Sub(own_gil);
  std::thread worker([&sub, n] {
    PyThreadState* mine = PyThreadState_New(sub.interpreter_state());
    for (long i = 0; i < n; ++i) {
      PyEval_RestoreThread(mine);
      PyEval_SaveThread();
    }
    PyEval_RestoreThread(mine);
    PyThreadState_Clear(mine);
    PyThreadState_DeleteCurrent();
  });
  worker.join();
}

void SubPyscope(long n, bool own_gil) {
  SubInterpreter& sub = Sub(own_gil);
  OnWorker(
      n, [&sub] { GILGuard warm(sub); },
      [&sub] {
        GILGuard gil(sub);
        Keep(gil);
      });
}

// --- 7. runtime start + finalize ---

void RuntimeRaw(long n) {
  for (long i = 0; i < n; ++i) {
    PyConfig config;
    PyConfig_InitIsolatedConfig(&config);
    config.install_signal_handlers = 0;
    PyStatus status = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(status)) std::abort();
    Py_FinalizeEx();
  }
}

void RuntimePyscope(long n) {
  for (long i = 0; i < n; ++i) {
    ScopedRuntime runtime;
    Keep(runtime);
  }
}

struct Case {
  const char* name;
  std::function<void(long)> run;
};

std::vector<Case> Cases() {
  std::vector<Case> cases = {
    {"nested/raw_gilstate", NestedRawGilState},
    {"nested/pyscope", NestedPyscope},
#if PYSCOPE_BENCH_HAVE_PYBIND11
    {"nested/pybind11", NestedPybind11},
#endif
    {"cold/raw_restore", ColdRawRestore},
    {"cold/raw_gilstate", ColdRawGilState},
    {"cold/pyscope", ColdPyscope},
    {"allow_threads/raw", AllowThreadsRaw},
    {"allow_threads/pyscope", AllowThreadsPyscope},
    {"sub_shared/raw_cached", [](long n) { SubRawCached(n, false); }},
    {"sub_shared/pyscope", [](long n) { SubPyscope(n, false); }},
    {"runtime/raw", RuntimeRaw},
    {"runtime/pyscope", RuntimePyscope},
  };
  if (pyscope::detail::compat::kHasPerInterpreterGil) {
    cases.push_back(
        {"sub_own/raw_cached", [](long n) { SubRawCached(n, true); }});
    cases.push_back({"sub_own/pyscope", [](long n) { SubPyscope(n, true); }});
  }
  return cases;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "--list") == 0) {
    for (const Case& c : Cases()) std::printf("%s\n", c.name);
    return 0;
  }
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s <case> <N> | --list\n", argv[0]);
    return 2;
  }
  const long n = std::atol(argv[2]);
  for (const Case& c : Cases()) {
    if (std::strcmp(c.name, argv[1]) != 0) continue;
    c.run(n);
    return 0;  // the runtime (if any) stays: the same at every N
  }
  std::fprintf(stderr, "unknown case %s\n", argv[1]);
  return 2;
}
