// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// ScopedDeadline: `while True: pass` stopped in the main interpreter and in
// sub-interpreters (also several at once, with their own GILs), Cancel()
// from another thread, a configurable exception type, and a deadline that
// ends with its scope: a late timer, or an exception set but not raised
// yet, never reaches code outside the scope.

#include <atomic>
#include <chrono>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "doctest/doctest.h"
#include "pyscope/pyscope.h"
#include "support/python_helpers.h"

namespace {

using pyscope::GILGuard;
using pyscope::ScopedDeadline;
using pyscope::ScopedRuntime;
using pyscope_test::EvalLong;
using pyscope_test::TestOptions;

constexpr char kSpin[] = "while True:\n    pass\n";

bool RaisedTimeout(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnknown &&
         status.message().rfind("TimeoutError", 0) == 0;
}

TEST_SUITE("deadline") {
  TEST_CASE("while True: pass stops after the deadline (main interpreter)") {
    ScopedRuntime runtime(TestOptions());
    GILGuard gil;
    absl::Status ran;
    bool expired = false;
    {
      ScopedDeadline deadline(absl::Milliseconds(100));
      ran = pyscope::TryExec(kSpin);
      expired = deadline.expired();
      CHECK(!deadline.cancelled());
    }
    CHECK_MESSAGE(RaisedTimeout(ran), ran.ToString());
    CHECK(expired);
    // The interpreter goes on normally.
    pyscope::Exec("after = 1");
    CHECK(EvalLong("after") == 1);
  }

  TEST_CASE("a loop inside a sub-interpreter stops") {
    ScopedRuntime runtime(TestOptions());
    for (const auto& entry : pyscope_test::CreatableOptions()) {
      const char* name = entry.first;
      const pyscope::SubInterpreterOptions& options = entry.second;
      CAPTURE(name);
      pyscope::SubInterpreter sub(options);
      GILGuard gil(sub);
      absl::Status ran;
      {
        ScopedDeadline deadline(absl::Milliseconds(50));
        ran = pyscope::TryExec(kSpin);
      }
      CHECK_MESSAGE(RaisedTimeout(ran), ran.ToString());
      pyscope::Exec("after = 2");
      CHECK(EvalLong("after") == 2);
    }
  }

  TEST_CASE("several threads in their own interpreters, each stopped") {
    ScopedRuntime runtime(TestOptions());
    const auto creatable = pyscope_test::CreatableOptions();
    const pyscope::SubInterpreterOptions options = creatable.back().second;
    pyscope::SubInterpreter first(options);
    pyscope::SubInterpreter second(options);
    std::atomic<int> stopped{0};
    auto spin_in = [&](pyscope::SubInterpreter& sub, int ms) {
      GILGuard gil(sub);
      ScopedDeadline deadline(absl::Milliseconds(ms));
      if (RaisedTimeout(pyscope::TryExec(kSpin))) ++stopped;
    };
    std::thread a([&] { spin_in(first, 80); });
    std::thread b([&] { spin_in(second, 120); });
    {
      // And the main interpreter at the same time.
      GILGuard gil;
      ScopedDeadline deadline(absl::Milliseconds(100));
      if (RaisedTimeout(pyscope::TryExec(kSpin))) ++stopped;
    }
    a.join();
    b.join();
    CHECK(stopped.load() == 3);
  }

  TEST_CASE("Cancel() from another thread, with a handle") {
    ScopedRuntime runtime(TestOptions());
    GILGuard gil;
    absl::Status ran;
    bool cancelled = false;
    pyscope::CancelHandle kept;
    {
      ScopedDeadline deadline(absl::InfiniteDuration());
      kept = deadline.handle();
      std::thread canceller([handle = deadline.handle()] {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        CHECK(handle.Cancel());
        CHECK(!handle.Cancel());  // once
      });
      ran = pyscope::TryExec(kSpin);
      cancelled = deadline.cancelled();
      canceller.join();
    }
    CHECK_MESSAGE(RaisedTimeout(ran), ran.ToString());
    CHECK(cancelled);
    // After the scope the handle does nothing.
    CHECK(!kept.Cancel());
    CHECK(!pyscope::CancelHandle().Cancel());
  }

  TEST_CASE("the exception type is configurable") {
    ScopedRuntime runtime(TestOptions());
    GILGuard gil;
    pyscope::Exec(
        "class Stop(BaseException):\n"
        "    pass\n"
        "def stubborn():\n"
        "    while True:\n"
        "        try:\n"
        "            while True:\n"
        "                pass\n"
        "        except Exception:\n"
        "            pass\n");
    PyObject* stop = pyscope::Eval("Stop");
    absl::Status ran;
    {
      pyscope::DeadlineOptions options;
      options.exception_type = stop;
      ScopedDeadline deadline(absl::Milliseconds(50), options);
      ran = pyscope::TryExec("stubborn()");
    }
    Py_DECREF(stop);
    CHECK_MESSAGE(ran.message().find("Stop") != std::string::npos,
                  ran.ToString());
    // A built-in exception class works in every interpreter.
    pyscope::DeadlineOptions interrupt;
    interrupt.exception_type = PyExc_KeyboardInterrupt;
    {
      ScopedDeadline deadline(absl::Milliseconds(20), interrupt);
      ran = pyscope::TryExec(kSpin);
    }
    CHECK(ran.message().rfind("KeyboardInterrupt", 0) == 0);
  }

  TEST_CASE("a late timer never fires into code after the scope") {
    ScopedRuntime runtime(TestOptions());
    GILGuard gil;
    {
      ScopedDeadline deadline(absl::Milliseconds(30));
      pyscope::Exec("quick = 1");
    }
    // Well past the deadline, Python code runs undisturbed.
    CHECK(pyscope::TryExec("import time\n"
                           "end = time.monotonic() + 0.3\n"
                           "while time.monotonic() < end:\n"
                           "    pass\n")
              .ok());
  }

  TEST_CASE("an exception set but not yet raised is withdrawn at scope end") {
    ScopedRuntime runtime(TestOptions());
    GILGuard gil;
    bool fired = false;
    {
      ScopedDeadline deadline(absl::Milliseconds(10));
      {
        // No Python runs here: the exception is set, and not raised.
        pyscope::AllowThreads nogil;
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
      }
      fired = deadline.fired();
    }
    CHECK(fired);
    CHECK(pyscope::TryExec("x = 0\nfor i in range(10000):\n    x += i\n").ok());
    CHECK(EvalLong("x") == 49995000);
  }

  TEST_CASE("refusals: no GIL, not an exception class") {
    ScopedRuntime runtime(TestOptions());
    {
      ScopedDeadline deadline(absl::Seconds(1), pyscope::DeadlineOptions(),
                              std::nothrow);
      CHECK(deadline.status().code() == absl::StatusCode::kFailedPrecondition);
      CHECK(!deadline.Cancel());
    }
    GILGuard gil;
    pyscope::DeadlineOptions options;
    options.exception_type = Py_None;
    bool threw = false;
    try {
      ScopedDeadline deadline(absl::Seconds(1), options);
    } catch (const pyscope::Error& error) {
      threw = true;
      CHECK(error.status().code() == absl::StatusCode::kInvalidArgument);
    }
    CHECK(threw);
  }
}

}  // namespace
