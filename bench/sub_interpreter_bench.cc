// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Scenario 6: sub-interpreters. Create + end; enter + leave from a worker
// thread; and CPU-bound Python on 1 or 2 interpreters at once (with their
// own GILs from CPython 3.12, shared before) to measure parallel scaling.

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

#include "bench_cases.h"
#include "bench_util.h"
#include "pyscope/pyscope.h"
#if PYSCOPE_BENCH_HAVE_SUB_INTERPRETER
#include "pyscope/sub_interpreter.h"
#endif

namespace pyscope_bench {
namespace {

// CPU-bound work for the parallel scenario: about a few milliseconds.
constexpr char kDefineWork[] =
    "def work():\n"
    "    total = 0\n"
    "    for i in range(100000):\n"
    "        total += i * i\n"
    "    return total\n";
constexpr char kRunWork[] = "work()\n";

struct RawSub {
  PyThreadState* tstate;  // the thread state Py_NewInterpreter returned
  PyInterpreterState* interp;
};

// On the main thread, detached: creates a sub-interpreter, runs `code` in
// it (if not null) and leaves the thread detached again.
RawSub NewRawSub(bool own_gil, const char* code) {
  PyEval_RestoreThread(MainThreadState());
  PyThreadState* tstate =
      own_gil ? NewInterpreterWithOwnGil() : Py_NewInterpreter();
  if (tstate == nullptr) {
    std::fprintf(stderr, "bench: creating a sub-interpreter failed\n");
    std::abort();
  }
  if (code != nullptr && PyRun_SimpleString(code) != 0) std::abort();
  PyEval_SaveThread();
  return RawSub{tstate, PyThreadState_GetInterpreter(tstate)};
}

// On the main thread, detached, with no other thread state of `sub` alive.
void EndRawSub(const RawSub& sub) {
  PyEval_RestoreThread(sub.tstate);
  Py_EndInterpreter(sub.tstate);
  DetachAfterEndInterpreter(MainThreadState());
}

void DeleteAttached(PyThreadState* tstate) {
  PyThreadState_Clear(tstate);
  PyThreadState_DeleteCurrent();
}

// For as long as it lives, a thread runs Python in the main interpreter
// without pause (holding the main GIL except where CPython's switch
// interval hands it to a waiter).
class MainInterpreterBusy {
 public:
  MainInterpreterBusy() : thread_([this] { Run(); }) {
    while (!running_.load()) std::this_thread::yield();
  }
  ~MainInterpreterBusy() {
    stop_.store(true);
    thread_.join();
  }
  MainInterpreterBusy(const MainInterpreterBusy&) = delete;
  MainInterpreterBusy& operator=(const MainInterpreterBusy&) = delete;

 private:
  void Run() {
    pyscope::GILGuard gil;
    running_.store(true);
    while (!stop_.load(std::memory_order_relaxed)) {
      if (PyRun_SimpleString("for _ in range(2000): pass\n") != 0) {
        std::abort();
      }
    }
  }

  std::atomic<bool> running_{false};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace

// --- create + end ----------------------------------------------------------

void S6CreateEndRawLegacy(benchmark::State& state) {
  EnsureRuntime();
  for (auto _ : state) EndRawSub(NewRawSub(/*own_gil=*/false, nullptr));
}

void S6CreateEndRawOwnGil(benchmark::State& state) {
  EnsureRuntime();
  for (auto _ : state) EndRawSub(NewRawSub(/*own_gil=*/true, nullptr));
}

// --- enter + leave from a detached worker thread ---------------------------
// state.range(0): 1 for an interpreter with its own GIL, 0 for a legacy one.

// What code without a cache does: PyGILState cannot be used with
// sub-interpreters, so each entry creates a thread state and deletes it.
void S6EnterLeaveRawCreateDelete(benchmark::State& state) {
  EnsureRuntime();
  const RawSub sub = NewRawSub(state.range(0) != 0, nullptr);
  TimeRepeatedOnNewThread(
      state, [] {},
      [&] {
        PyThreadState* tstate = PyThreadState_New(sub.interp);
        PyEval_RestoreThread(tstate);
        DeleteAttached(tstate);
      },
      [] {});
  EndRawSub(sub);
}

// The cheapest raw sequence: the worker keeps one thread state for the
// interpreter and attaches/detaches it.
void S6EnterLeaveRawCached(benchmark::State& state) {
  EnsureRuntime();
  const RawSub sub = NewRawSub(state.range(0) != 0, nullptr);
  PyThreadState* tstate = nullptr;
  TimeRepeatedOnNewThread(
      state, [&] { tstate = PyThreadState_New(sub.interp); },
      [&] {
        PyEval_RestoreThread(tstate);
        PyEval_SaveThread();
      },
      [&] {
        PyEval_RestoreThread(tstate);
        DeleteAttached(tstate);
      });
  EndRawSub(sub);
}

// The same with another thread running Python in the main interpreter all
// along: an own-GIL entry that never takes the main GIL does not notice.
void S6OwnGilMainBusyRawCached(benchmark::State& state) {
  EnsureRuntime();
  const RawSub sub = NewRawSub(/*own_gil=*/true, nullptr);
  PyThreadState* tstate = nullptr;
  {
    MainInterpreterBusy busy;
    TimeRepeatedOnNewThread(
        state, [&] { tstate = PyThreadState_New(sub.interp); },
        [&] {
          PyEval_RestoreThread(tstate);
          PyEval_SaveThread();
        },
        [&] {
          PyEval_RestoreThread(tstate);
          DeleteAttached(tstate);
        });
  }
  EndRawSub(sub);
}

// --- switch into a (legacy) sub-interpreter from a thread attached to the
// main one ------------------------------------------------------------------

void S6SwitchRawCreateSwapDelete(benchmark::State& state) {
  EnsureRuntime();
  const RawSub sub = NewRawSub(/*own_gil=*/false, nullptr);
  PyThreadState* main_tstate = nullptr;
  TimeRepeatedOnNewThread(
      state,
      [&] {
        main_tstate = PyThreadState_New(MainInterpreter());
        PyEval_RestoreThread(main_tstate);
      },
      [&] {
        PyThreadState* tstate = PyThreadState_New(sub.interp);
        PyThreadState* previous = PyThreadState_Swap(tstate);
        PyThreadState_Swap(previous);
        PyThreadState_Clear(tstate);
        PyThreadState_Delete(tstate);
      },
      [&] { DeleteAttached(main_tstate); });
  EndRawSub(sub);
}

void S6SwitchRawCachedSwap(benchmark::State& state) {
  EnsureRuntime();
  const RawSub sub = NewRawSub(/*own_gil=*/false, nullptr);
  PyThreadState* main_tstate = nullptr;
  PyThreadState* sub_tstate = nullptr;
  TimeRepeatedOnNewThread(
      state,
      [&] {
        main_tstate = PyThreadState_New(MainInterpreter());
        sub_tstate = PyThreadState_New(sub.interp);
        PyEval_RestoreThread(main_tstate);
      },
      [&] {
        PyThreadState* previous = PyThreadState_Swap(sub_tstate);
        PyThreadState_Swap(previous);
      },
      [&] {
        PyThreadState_Clear(sub_tstate);
        PyThreadState_Delete(sub_tstate);
        DeleteAttached(main_tstate);
      });
  EndRawSub(sub);
}

// --- parallel CPU-bound Python ---------------------------------------------
// state.range(0) interpreters, one worker thread each, every worker runs
// work() once per iteration. Scaling = 2 * time(1) / time(2).

namespace {

void RunParallelRaw(benchmark::State& state, bool own_gil) {
  EnsureRuntime();
  const int count = static_cast<int>(state.range(0));
  std::vector<RawSub> subs;
  for (int i = 0; i < count; ++i)
    subs.push_back(NewRawSub(own_gil, kDefineWork));
  std::vector<PyThreadState*> tstates(count);
  {
    WorkerPool pool(count);
    pool.Run([&](int i) { tstates[i] = PyThreadState_New(subs[i].interp); });
    const std::function<void(int)> round = [&](int i) {
      PyEval_RestoreThread(tstates[i]);
      if (PyRun_SimpleString(kRunWork) != 0) std::abort();
      PyEval_SaveThread();
    };
    for (auto _ : state) state.SetIterationTime(pool.Run(round));
    pool.Run([&](int i) {
      PyEval_RestoreThread(tstates[i]);
      DeleteAttached(tstates[i]);
    });
  }
  for (const RawSub& sub : subs) EndRawSub(sub);
}

}  // namespace

void S6ParallelRawOwnGil(benchmark::State& state) {
  RunParallelRaw(state, /*own_gil=*/true);
}

void S6ParallelRawSharedGil(benchmark::State& state) {
  RunParallelRaw(state, /*own_gil=*/false);
}

#if PYSCOPE_BENCH_HAVE_SUB_INTERPRETER

namespace {

// The "legacy" variants use Default(): Legacy() where there is a GIL, and
// on the free-threaded build the settings its Py_NewInterpreter uses
// (check_multi_interp_extensions on), like the raw_legacy variants.
pyscope::SubInterpreterOptions OptionsFor(bool own_gil) {
  return own_gil ? pyscope::SubInterpreterOptions::Isolated()
                 : pyscope::SubInterpreterOptions::Default();
}

}  // namespace

void S6CreateEndPyscopeLegacy(benchmark::State& state) {
  EnsureRuntime();
  for (auto _ : state) {
    pyscope::SubInterpreter sub(OptionsFor(/*own_gil=*/false));
  }
}

void S6CreateEndPyscopeIsolated(benchmark::State& state) {
  EnsureRuntime();
  for (auto _ : state) {
    pyscope::SubInterpreter sub(pyscope::SubInterpreterOptions::Isolated());
  }
}

void S6EnterLeavePyscope(benchmark::State& state) {
  EnsureRuntime();
  pyscope::SubInterpreter sub(OptionsFor(state.range(0) != 0));
  TimeRepeatedOnNewThread(
      state, [&] { pyscope::GILGuard warm_up(sub); },
      [&] { pyscope::GILGuard gil(sub); }, [] {});
}

void S6OwnGilMainBusyPyscope(benchmark::State& state) {
  EnsureRuntime();
  pyscope::SubInterpreter sub(OptionsFor(/*own_gil=*/true));
  MainInterpreterBusy busy;
  TimeRepeatedOnNewThread(
      state, [&] { pyscope::GILGuard warm_up(sub); },
      [&] { pyscope::GILGuard gil(sub); }, [] {});
}

void S6SwitchPyscope(benchmark::State& state) {
  EnsureRuntime();
  pyscope::SubInterpreter sub(OptionsFor(/*own_gil=*/false));
  RunOnNewThread([&] {
    pyscope::GILGuard main_gil;
    { pyscope::GILGuard warm_up(sub); }
    for (auto _ : state) {
      pyscope::GILGuard gil(sub);
    }
  });
}

void S6ParallelPyscopeIsolated(benchmark::State& state) {
  EnsureRuntime();
  const int count = static_cast<int>(state.range(0));
  std::vector<std::unique_ptr<pyscope::SubInterpreter>> subs;
  for (int i = 0; i < count; ++i) {
    subs.push_back(std::make_unique<pyscope::SubInterpreter>(
        pyscope::SubInterpreterOptions::Isolated()));
    subs.back()->Exec(kDefineWork);
  }
  WorkerPool pool(count);
  pool.Run([&](int i) { pyscope::GILGuard warm_up(*subs[i]); });
  const std::function<void(int)> round = [&](int i) {
    pyscope::GILGuard gil(*subs[i]);
    if (PyRun_SimpleString(kRunWork) != 0) std::abort();
  };
  for (auto _ : state) state.SetIterationTime(pool.Run(round));
}

#endif  // PYSCOPE_BENCH_HAVE_SUB_INTERPRETER

}  // namespace pyscope_bench
