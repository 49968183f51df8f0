// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// The finalization protocol: the gate refuses new attachments, the drain
// waits for native threads inside guards (up to the deadline), and threads
// that come back after finalization are ended by unwinding, not by a crash
// or std::terminate.

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "doctest/doctest.h"
#include "pyscope/pyscope.h"
#include "support/python_helpers.h"
#include "support/scenario.h"
#include "support/sync.h"

namespace {

using pyscope::AllowThreads;
using pyscope::GILGuard;
using pyscope::RuntimeOptions;
using pyscope::ScopedRuntime;
using pyscope_test::ChildResult;
using pyscope_test::EvalLong;
using pyscope_test::RunScenario;
using pyscope_test::TestOptions;
using Clock = std::chrono::steady_clock;

using pyscope_test::Event;

TEST_SUITE("finalization") {
  TEST_CASE("a worker inside a GILGuard delays finalization until it leaves") {
    RuntimeOptions options = TestOptions();
    options.drain_deadline = absl::Seconds(10);
    ScopedRuntime runtime(options);
    std::atomic<bool> worker_left{false};
    bool left_before_callbacks = false;
    Clock::time_point left_at;
    Event inside;
    std::thread worker([&] {
      {
        GILGuard gil;
        pyscope::Exec("work = 1");
        inside.Set();
        {
          AllowThreads nogil;
          std::this_thread::sleep_for(std::chrono::milliseconds(300));
        }
        pyscope::Exec("work += 1");
        left_at = Clock::now();
        worker_left = true;
      }
    });
    inside.Wait();
    runtime.AddExitCallback([&] {
      left_before_callbacks = worker_left.load();
      GILGuard gil;
      CHECK(EvalLong("work") == 2);
    });
    const absl::Status status = runtime.Finalize();
    const Clock::time_point end = Clock::now();
    worker.join();
    CHECK(status.ok());
    // Finalize returned only after the worker left its guard, and the exit
    // callbacks (which run after the drain) already saw it gone.
    CHECK(worker_left.load());
    CHECK(left_before_callbacks);
    CHECK(left_at <= end);
  }
}

// The line of the stuck worker's GILGuard, for the report.
int stuck_guard_line = 0;

// Prints when destroyed: shows a thread was ended by unwinding its stack.
struct PrintOnUnwind {
  ~PrintOnUnwind() { std::printf("worker_unwound=1\n"); }
};

PYSCOPE_SCENARIO(WorkerStaysPastDeadline) {
  auto runtime = ScopedRuntime::Create(TestOptions());  // 200ms deadline
  if (!runtime.ok()) return 1;
  Event inside;
  Event finalized;
  std::thread worker([&] {
    pthread_setname_np(pthread_self(), "stuck-worker");
    PrintOnUnwind unwind_marker;
    stuck_guard_line = __LINE__ + 1;
    GILGuard gil;
    {
      AllowThreads nogil;
      inside.Set();
      finalized.Wait();
    }  // takes the GIL back: the runtime is gone, so the thread ends here
    std::printf("worker_continued=1\n");
  });
  inside.Wait();
  const absl::Status status = (*runtime)->Finalize();
  std::printf("guard_line=%d\n", stuck_guard_line);
  std::printf("finalize_code=%s\n",
              absl::StatusCodeToString(status.code()).c_str());
  std::printf("finalize_message=%s\n", std::string(status.message()).c_str());
  finalized.Set();
  worker.join();
  std::printf("joined=1\n");
  // The process is healthy: a new runtime starts and native threads use it.
  runtime->reset();
  ScopedRuntime again(TestOptions());
  long value = 0;
  std::thread fresh([&value] {
    GILGuard gil;
    value = EvalLong("20 + 22");
  });
  fresh.join();
  std::printf("after=%ld\n", value);
  return 0;
}

PYSCOPE_SCENARIO(AcquireWhileFinalizing) {
  auto runtime = ScopedRuntime::Create(TestOptions());
  if (!runtime.ok()) return 1;
  {
    GILGuard gil;
    pyscope::Exec("n = 0");
  }
  constexpr int kThreads = 3;
  constexpr int kRefusalsEach = 200;
  std::atomic<int> attached{0};
  std::atomic<int> refused_unavailable{0};
  std::atomic<int> refused_other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      int refusals = 0;
      while (refusals < kRefusalsEach) {
        GILGuard gil(std::nothrow);
        if (gil.ok()) {
          pyscope::Exec("n += 1");
          ++attached;
        } else if (gil.status().code() == absl::StatusCode::kUnavailable) {
          ++refusals;
          ++refused_unavailable;
        } else {
          ++refusals;
          ++refused_other;
        }
      }
    });
  }
  while (attached.load() < 100) std::this_thread::yield();
  const absl::Status status = (*runtime)->Finalize();
  for (std::thread& thread : threads) thread.join();
  std::printf("finalize=%s\n", status.ToString().c_str());
  std::printf("attached_some=%d\n", attached.load() >= 100);
  std::printf("refused_unavailable=%d\n", refused_unavailable.load());
  std::printf("refused_other=%d\n", refused_other.load());
  return 0;
}

PYSCOPE_SCENARIO(DaemonThreadAfterFinalization) {
  // A Python daemon thread inside native code that released the GIL when
  // Py_FinalizeEx ran: taking it back ends the thread by unwinding.
  ScopedRuntime runtime(TestOptions());
  static Event released;
  static Event finalized;
  static PyMethodDef block_def = {
      "block",
      [](PyObject*, PyObject*) -> PyObject* {
        GILGuard gil;  // borrowed from the daemon thread
        PrintOnUnwind unwind_marker;
        {
          AllowThreads nogil;
          released.Set();
          finalized.Wait();
        }
        std::printf("daemon_continued=1\n");
        Py_RETURN_NONE;
      },
      METH_NOARGS, nullptr};
  {
    GILGuard gil;
    PyObject* block = PyCFunction_New(&block_def, nullptr);
    PyObject_SetAttrString(PyImport_AddModule("__main__"), "block", block);
    Py_DECREF(block);
    pyscope::Exec(
        "import threading\n"
        "threading.Thread(target=block, daemon=True).start()\n");
  }
  released.Wait();
  std::printf("finalize=%s\n", runtime.Finalize().ToString().c_str());
  finalized.Set();
  // Give the daemon thread time to come back and be ended.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  std::printf("main_done=1\n");
  return 0;
}

TEST_SUITE("finalization") {
  TEST_CASE("a worker past the drain deadline is named, then ended cleanly") {
    ChildResult child =
        RunScenario("WorkerStaysPastDeadline", absl::Seconds(20));
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    CHECK(child.out.find("finalize_code=DEADLINE_EXCEEDED\n") !=
          std::string::npos);
    // The status names the thread and where its guard was created.
    const size_t line_at = child.out.find("guard_line=");
    REQUIRE(line_at != std::string::npos);
    const std::string line = child.out.substr(
        line_at + 11, child.out.find('\n', line_at) - line_at - 11);
    CHECK(child.out.find("\"stuck-worker\"") != std::string::npos);
    CHECK(child.out.find(absl::StrCat("finalization_test.cc:", line)) !=
          std::string::npos);
    // The worker was ended by unwinding (its destructors ran), did not go
    // on, and nothing called std::terminate.
    CHECK(child.out.find("worker_unwound=1\n") != std::string::npos);
    CHECK(child.out.find("worker_continued=1\n") == std::string::npos);
    CHECK(child.out.find("joined=1\n") != std::string::npos);
    CHECK(child.err.find("pyscope: ending thread") != std::string::npos);
    CHECK(child.err.find("stuck-worker") != std::string::npos);
    CHECK(child.err.find("terminate") == std::string::npos);
    CHECK(child.out.find("after=42\n") != std::string::npos);
  }

  TEST_CASE("acquisitions racing finalization are refused, never hang") {
    ChildResult child =
        RunScenario("AcquireWhileFinalizing", absl::Seconds(20));
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    CHECK(child.out.find("finalize=OK\n") != std::string::npos);
    CHECK(child.out.find("attached_some=1\n") != std::string::npos);
    CHECK(child.out.find("refused_unavailable=600\n") != std::string::npos);
    CHECK(child.out.find("refused_other=0\n") != std::string::npos);
  }

  TEST_CASE("a daemon Python thread coming back after finalization ends") {
    ChildResult child =
        RunScenario("DaemonThreadAfterFinalization", absl::Seconds(20));
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    CHECK(child.out.find("finalize=OK\n") != std::string::npos);
    CHECK(child.out.find("daemon_continued=1\n") == std::string::npos);
    CHECK(child.out.find("worker_unwound=1\n") != std::string::npos);
    CHECK(child.out.find("main_done=1\n") != std::string::npos);
  }
}

// --- Shutdown hazards found in hosts ---

// A native worker imported `threading` first (threading takes it for its
// main thread) and is idle, alive, when the runtime finalizes.
PYSCOPE_SCENARIO(NativeThreadImportedThreadingFirst) {
  ScopedRuntime runtime(TestOptions());
  Event imported;
  Event may_exit;
  std::thread worker([&] {
    {
      GILGuard gil;
      pyscope::Exec("import threading\nthreading.current_thread().name");
    }
    imported.Set();
    may_exit.Wait();
  });
  imported.Wait();
  pyscope_test::PrintFact("finalize", runtime.Finalize().ToString());
  may_exit.Set();
  worker.join();
  pyscope_test::PrintFact("joined", 1L);
  return 0;
}

// Threads inside a sub-interpreter are refused and exit while the runtime
// finalizes; their cached states must not make the interpreter's end fail.
PYSCOPE_SCENARIO(SubInterpreterThreadsExitDuringFinalization) {
  for (int cycle = 0; cycle < 3; ++cycle) {
    auto runtime = ScopedRuntime::Create(TestOptions());
    if (!runtime.ok()) return 1;
    auto sub = pyscope::SubInterpreter::Create(
        pyscope_test::CreatableOptions().back().second);
    if (!sub.ok()) return 2;
    std::atomic<int> entered{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 16; ++i) {
      threads.emplace_back([&, i] {
        bool counted = false;
        for (;;) {
          GILGuard gil(**sub, std::nothrow);
          if (!gil.ok()) break;  // the runtime is finalizing: exit
          pyscope::Exec(absl::StrCat("x", i, " = ", i));
          if (!counted) {
            counted = true;
            entered.fetch_add(1);
          }
        }
      });
    }
    while (entered.load() < 16) std::this_thread::yield();
    const absl::Status finalized = (*runtime)->Finalize();
    for (std::thread& thread : threads) thread.join();
    pyscope_test::PrintFact(absl::StrCat("finalize", cycle).c_str(),
                            finalized.ToString());
    pyscope_test::PrintFact(absl::StrCat("alive", cycle).c_str(),
                            (*sub)->alive() ? 1L : 0L);
  }
  return 0;
}

// A Python daemon thread inside native code (a borrowed GILGuard, then
// AllowThreads) that takes the GIL back while Py_FinalizeEx runs: CPython
// ends it inside PyEval_RestoreThread, and every scope must close on the
// way out. PYSCOPE_TEST_DELAY_US sets when it comes back.
PYSCOPE_SCENARIO(DaemonLeavesAllowThreadsDuringFinalization) {
  static long delay_us = std::atol(std::getenv("PYSCOPE_TEST_DELAY_US"));
  static Event released;
  static PyMethodDef block_def = {
      "block",
      [](PyObject*, PyObject*) -> PyObject* {
        GILGuard gil;  // borrowed from the daemon thread
        {
          AllowThreads nogil;
          released.Set();
          std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
        }
        Py_RETURN_NONE;
      },
      METH_NOARGS, nullptr};
  ScopedRuntime runtime(TestOptions());
  {
    GILGuard gil;
    PyObject* block = PyCFunction_New(&block_def, nullptr);
    PyObject_SetAttrString(PyImport_AddModule("__main__"), "block", block);
    Py_DECREF(block);
    pyscope::Exec(
        "import threading, time\n"
        "def run():\n"
        "    while True:\n"
        "        block()\n"
        "threading.Thread(target=run, daemon=True).start()\n");
  }
  released.Wait();
  pyscope_test::PrintFact("finalize", runtime.Finalize().ToString());
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  pyscope_test::PrintFact("main_done", 1L);
  return 0;
}

// Finalize() called from the runtime's own exit callback, with a handler
// that records misuse instead of aborting.
PYSCOPE_SCENARIO(FinalizeFromExitCallback) {
  pyscope_test::RecordingMisuseHandler recording;
  ScopedRuntime runtime(TestOptions());
  absl::Status inner;
  runtime.AddExitCallback([&] { inner = runtime.Finalize(); });
  const absl::Status outer = runtime.Finalize();
  pyscope_test::PrintFact("inner", absl::StatusCodeToString(inner.code()));
  pyscope_test::PrintFact("outer", outer.ToString());
  for (const pyscope::MisuseReport& report : recording.reports()) {
    pyscope_test::PrintFact("misuse", pyscope::MisuseName(report.misuse));
  }
  ScopedRuntime again(TestOptions());
  pyscope_test::PrintFact("again", again.Finalize().ToString());
  return 0;
}

TEST_SUITE("finalization") {
  TEST_CASE("an idle native thread that imported threading first") {
    ChildResult child = RunScenario("NativeThreadImportedThreadingFirst");
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    CHECK(pyscope_test::HasFact(child, "finalize=OK"));
    CHECK(pyscope_test::HasFact(child, "joined=1"));
  }

  TEST_CASE("sub-interpreter threads exiting during finalization") {
    ChildResult child = RunScenario(
        "SubInterpreterThreadsExitDuringFinalization", absl::Seconds(60));
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    for (int cycle = 0; cycle < 3; ++cycle) {
      CHECK(
          pyscope_test::HasFact(child, absl::StrCat("finalize", cycle, "=OK")));
      CHECK(pyscope_test::HasFact(child, absl::StrCat("alive", cycle, "=0")));
    }
  }

  TEST_CASE("a daemon thread leaving AllowThreads while Python finalizes") {
    for (const char* delay :
         {"0", "200", "1000", "3000", "6000", "12000", "25000"}) {
      CAPTURE(delay);
      ChildResult child = RunScenario(
          "DaemonLeavesAllowThreadsDuringFinalization", absl::Seconds(20),
          {absl::StrCat("PYSCOPE_TEST_DELAY_US=", delay)});
      INFO(child.Describe());
      CHECK(child.ExitedWith(0));
      CHECK(pyscope_test::HasFact(child, "finalize=OK"));
      CHECK(pyscope_test::HasFact(child, "main_done=1"));
      CHECK(child.err.find("pyscope misuse") == std::string::npos);
    }
  }

  TEST_CASE("Finalize from an exit callback is refused; the outer one works") {
    ChildResult child = RunScenario("FinalizeFromExitCallback");
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    CHECK(pyscope_test::HasFact(child, "inner=FAILED_PRECONDITION"));
    CHECK(pyscope_test::HasFact(child, "outer=OK"));
    CHECK(pyscope_test::HasFact(child, "misuse=FinalizeReentered"));
    CHECK(pyscope_test::HasFact(child, "again=OK"));
  }
}

}  // namespace
