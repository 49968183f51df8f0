// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Calls posted to the main thread: they run there (and only there) with the
// GIL, in the main interpreter, also when posted from a sub-interpreter;
// futures carry results and exceptions; failures are reported through
// sys.unraisablehook; a full queue and a finalizing runtime are statuses;
// calls that never ran are destroyed and counted at finalization.

#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "doctest/doctest.h"
#include "pyscope/pyscope.h"
#include "support/python_helpers.h"
#include "support/scenario.h"

namespace {

using pyscope::GILGuard;
using pyscope::ScopedRuntime;
using pyscope_test::EvalLong;
using pyscope_test::EvalString;
using pyscope_test::RunScenario;
using pyscope_test::TestOptions;
using pyscope_test::ThreadId;

// Runs Python on the calling (main) thread until `condition` (a Python
// expression) is true, so that CPython runs the pending calls; gives up
// after 30 s (a hang is a failure, not a wait).
void RunPythonUntil(const char* condition) PYSCOPE_REQUIRES_GIL {
  pyscope::Exec(std::string("import time\n"
                            "_give_up = time.monotonic() + 30\n"
                            "while not (") +
                condition +
                ") and time.monotonic() < _give_up:\n"
                "    time.sleep(0.001)\n");
}

TEST_SUITE("main_thread") {
  TEST_CASE("worker threads' calls run on the main thread with the GIL") {
    ScopedRuntime runtime(TestOptions());
    const long main_id = ThreadId();
    const pyscope::MainThreadCallStats before =
        pyscope::GetMainThreadCallStats();
    std::atomic<int> on_main{0};
    std::atomic<int> elsewhere{0};
    {
      GILGuard gil;
      pyscope::Exec("ran = []");
    }
    std::vector<std::thread> workers;
    for (int w = 0; w < 4; ++w) {
      workers.emplace_back([&, w] {
        for (int i = 0; i < 5; ++i) {
          absl::Status posted = pyscope::PostToMainThread([&, w, i] {
            PYSCOPE_ASSERT_GIL_HELD();
            (ThreadId() == main_id ? on_main : elsewhere)++;
            pyscope::Exec("ran.append(" + std::to_string(w * 10 + i) + ")");
          });
          CHECK_MESSAGE(posted.ok(), posted.ToString());
          // Running RunPendingCalls here does nothing: not the main thread.
          GILGuard gil;
          CHECK(pyscope::RunPendingCalls().ok());
        }
      });
    }
    for (std::thread& worker : workers) worker.join();
    {
      GILGuard gil;
      RunPythonUntil("len(ran) == 20");
      CHECK(EvalLong("len(ran)") == 20);
      CHECK(EvalLong("len(set(ran))") == 20);
    }
    CHECK(on_main.load() == 20);
    CHECK(elsewhere.load() == 0);
    const pyscope::MainThreadCallStats after =
        pyscope::GetMainThreadCallStats();
    CHECK(after.posted - before.posted == 20);
    CHECK(after.ran - before.ran == 20);
    CHECK(after.failed == before.failed);
    CHECK(after.pending == 0);
  }

  TEST_CASE("CallOnMainThread: a future with the result or the exception") {
    ScopedRuntime runtime(TestOptions());
    {
      GILGuard gil;
      pyscope::Exec("answer = 41\nfinished = False");
    }
    std::string outcome;
    std::thread worker([&] {
      auto value = pyscope::CallOnMainThread(
          []() PYSCOPE_REQUIRES_GIL { return EvalLong("answer + 1"); });
      REQUIRE(value.ok());
      CHECK(value->get() == 42);
      auto cpp_error = pyscope::CallOnMainThread(
          []() -> int { throw std::runtime_error("from C++"); });
      REQUIRE(cpp_error.ok());
      CHECK_THROWS_WITH_AS(cpp_error->get(), "from C++", std::runtime_error);
      auto python_error = pyscope::CallOnMainThread([]() PYSCOPE_REQUIRES_GIL {
        PyErr_SetString(PyExc_KeyError, "left set");
      });
      REQUIRE(python_error.ok());
      try {
        python_error->get();
        FAIL("no exception");
      } catch (const pyscope::PythonError& error) {
        CHECK(error.type_name() == "KeyError");
        outcome = error.message();
      }
      auto raised = pyscope::CallOnMainThread(
          []() PYSCOPE_REQUIRES_GIL { pyscope::Exec("1 / 0"); });
      REQUIRE(raised.ok());
      CHECK_THROWS_AS(raised->get(), pyscope::PythonError);
      auto done = pyscope::CallOnMainThread(
          []() PYSCOPE_REQUIRES_GIL { pyscope::Exec("finished = True"); });
      REQUIRE(done.ok());
      done->get();
    });
    {
      GILGuard gil;
      RunPythonUntil("finished");
      // The failures were delivered to the futures, not raised here.
      CHECK(PyErr_Occurred() == nullptr);
    }
    worker.join();
    CHECK(outcome == "'left set'");
  }

  TEST_CASE("a failing posted call is reported through sys.unraisablehook") {
    ScopedRuntime runtime(TestOptions());
    const uint64_t failed_before = pyscope::GetMainThreadCallStats().failed;
    {
      GILGuard gil;
      pyscope::Exec(
          "import sys\n"
          "reports = []\n"
          "def hook(u):\n"
          "    reports.append((u.exc_type.__name__, str(u.exc_value),\n"
          "                    str(u.object)))\n"
          "sys.unraisablehook = hook\n"
          "survived = False\n");
    }
    std::thread worker([] {
      CHECK(pyscope::PostToMainThread([] {
              throw std::runtime_error("worker's closure failed");
            }).ok());
      CHECK(pyscope::PostToMainThread([]() PYSCOPE_REQUIRES_GIL {
              pyscope::Exec("raise ValueError('python failed')");
            }).ok());
      CHECK(pyscope::PostToMainThread([]() PYSCOPE_REQUIRES_GIL {
              pyscope::Exec("survived = True");
            }).ok());
    });
    worker.join();
    GILGuard gil;
    // The Python code the main thread runs is not interrupted by them.
    RunPythonUntil("survived");
    CHECK(EvalLong("len(reports)") == 2);
    CHECK(EvalString("reports[0][0]") == "RuntimeError");
    CHECK(EvalString("reports[0][1]").find("worker's closure failed") !=
          std::string::npos);
    CHECK(EvalString("reports[0][2]").find("main_thread_test.cc") !=
          std::string::npos);
    // A PythonError thrown by pyscope::Exec keeps its type, message and
    // traceback in the report.
    CHECK(EvalString("reports[1][0]") == "RuntimeError");
    CHECK(EvalString("reports[1][1]").find("ValueError: python failed") !=
          std::string::npos);
    CHECK(EvalString("reports[1][1]").find("Traceback") != std::string::npos);
    CHECK(pyscope::GetMainThreadCallStats().failed - failed_before == 2);
  }

  TEST_CASE("a call posted from a sub-interpreter runs in the main one") {
    ScopedRuntime runtime(TestOptions());
    pyscope::SubInterpreter sub;
    std::atomic<long> ran_in{-1};
    std::thread worker([&] {
      GILGuard gil(sub);
      absl::Status posted = pyscope::PostToMainThread([&] {
        PYSCOPE_ASSERT_GIL_HELD();
        ran_in = static_cast<long>(PyInterpreterState_GetID(
            PyThreadState_GetInterpreter(PyThreadState_Get())));
      });
      CHECK_MESSAGE(posted.ok(), posted.ToString());
      // Still in the sub-interpreter afterwards.
      CHECK(PyInterpreterState_GetID(
                PyThreadState_GetInterpreter(PyThreadState_Get())) == sub.id());
    });
    worker.join();
    GILGuard gil;
    CHECK(pyscope::RunPendingCalls().ok());
    CHECK(ran_in.load() == 0);
  }

  TEST_CASE("a full queue is kResourceExhausted; RunPendingCalls drains it") {
    ScopedRuntime runtime(TestOptions());
    std::atomic<int> ran{0};
    int accepted = 0;
    absl::Status last;
    std::thread worker([&] {
      for (int i = 0; i < 100000; ++i) {
        last = pyscope::PostToMainThread([&] { ++ran; });
        if (!last.ok()) break;
        ++accepted;
      }
    });
    worker.join();
    CHECK(last.code() == absl::StatusCode::kResourceExhausted);
    CHECK(accepted > 0);
    CHECK(accepted < 100000);
    GILGuard gil;
    CHECK(pyscope::RunPendingCalls().ok());
    CHECK(ran.load() == accepted);
    CHECK(pyscope::GetMainThreadCallStats().pending == 0);
  }

  TEST_CASE("calls that never ran are destroyed and counted at finalization") {
    ScopedRuntime runtime(TestOptions());
    const pyscope::MainThreadCallStats before =
        pyscope::GetMainThreadCallStats();
    auto destroyed = std::make_shared<std::atomic<int>>(0);
    auto destroyed_with_gil = std::make_shared<std::atomic<int>>(0);
    struct Tracked {
      std::shared_ptr<std::atomic<int>> destroyed, with_gil;
      ~Tracked() {
        if (destroyed == nullptr) return;
        ++*destroyed;
        if (PyGILState_Check() == 1) ++*with_gil;
      }
    };
    std::future<int> future;
    std::thread worker([&] {
      for (int i = 0; i < 3; ++i) {
        auto tracked = std::make_shared<Tracked>();
        tracked->destroyed = destroyed;
        tracked->with_gil = destroyed_with_gil;
        CHECK(pyscope::PostToMainThread([tracked] {}).ok());
      }
      auto posted = pyscope::CallOnMainThread([] { return 1; });
      REQUIRE(posted.ok());
      future = std::move(*posted);
    });
    worker.join();
    CHECK(destroyed->load() == 0);
    absl::Status refused_in_callback;
    runtime.AddExitCallback(
        [&] { refused_in_callback = pyscope::PostToMainThread([] {}); });
    // The main thread never ran Python: nothing ran.
    CHECK(runtime.Finalize().ok());
    const pyscope::MainThreadCallStats after =
        pyscope::GetMainThreadCallStats();
    CHECK(after.discarded - before.discarded == 4);
    CHECK(after.ran == before.ran);
    CHECK(after.pending == 0);
    CHECK(destroyed->load() == 3);
    CHECK(destroyed_with_gil->load() == 3);
    CHECK(refused_in_callback.code() == absl::StatusCode::kUnavailable);
    try {
      future.get();
      FAIL("no exception");
    } catch (const pyscope::Error& error) {
      CHECK(error.status().code() == absl::StatusCode::kCancelled);
    }
    absl::Status after_finalize = pyscope::PostToMainThread([] {});
    CHECK(after_finalize.code() == absl::StatusCode::kUnavailable);
    CHECK(after_finalize.message().find("finalized") != std::string::npos);
    // A new runtime accepts calls again.
    ScopedRuntime again(TestOptions());
    std::atomic<bool> ran{false};
    CHECK(pyscope::PostToMainThread([&] { ran = true; }).ok());
    GILGuard gil;
    CHECK(pyscope::RunPendingCalls().ok());
    CHECK(ran.load());
  }

  TEST_CASE("before any runtime: kFailedPrecondition") {
    pyscope_test::ChildResult child = RunScenario("PostWithoutRuntime");
    REQUIRE_MESSAGE(child.ExitedWith(0), child.Describe());
    CHECK(pyscope_test::HasFact(child, "code=FAILED_PRECONDITION"));
  }
}

PYSCOPE_SCENARIO(PostWithoutRuntime) {
  absl::Status status = pyscope::PostToMainThread([] {});
  pyscope_test::PrintFact("code", absl::StatusCodeToString(status.code()));
  return 0;
}

}  // namespace
