// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// ScopedTrace / ScopedProfile and their all-threads forms: events with the
// frame's file, line and function, exact restoration of what was installed
// before (a Python sys.settrace function, an outer scope), exceptions from
// the callable raised as Python exceptions, sub-interpreters, refusals.

#include <map>
#include <new>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "doctest/doctest.h"
#include "pyscope/pyscope.h"
#include "support/python_helpers.h"

namespace {

using pyscope::GILGuard;
using pyscope::ScopedProfile;
using pyscope::ScopedRuntime;
using pyscope::ScopedTrace;
using pyscope::TraceEvent;
using pyscope::TraceEventKind;
using pyscope_test::EvalLong;
using pyscope_test::EvalString;
using pyscope_test::TestOptions;

constexpr char kFunction[] =
    "def f(n):\n"               // line 1
    "    total = 0\n"           // line 2
    "    for i in range(n):\n"  // line 3
    "        total += i\n"      // line 4
    "    return total\n";       // line 5

TEST_SUITE("trace") {
  TEST_CASE("line events carry the frame's file, line and function") {
    ScopedRuntime runtime(TestOptions());
    GILGuard gil;
    pyscope::Exec(kFunction);
    std::map<int, int> lines;  // line -> times executed, inside f
    std::set<std::string> files;
    int calls = 0;
    int returns = 0;
    {
      ScopedTrace trace([&](const TraceEvent& event) {
        if (event.function() != "f") return;
        files.insert(std::string(event.file()));
        switch (event.kind()) {
          case TraceEventKind::kLine:
            ++lines[event.line()];
            break;
          case TraceEventKind::kCall:
            ++calls;
            break;
          case TraceEventKind::kReturn:
            ++returns;
            break;
          default:
            break;
        }
      });
      pyscope::Exec("result = f(3)");
    }
    CHECK(EvalLong("result") == 3);
    CHECK(calls == 1);
    CHECK(returns == 1);
    CHECK(files == std::set<std::string>{"<string>"});
    CHECK(lines[2] == 1);
    CHECK(lines[3] == 4);  // three iterations and the final test
    CHECK(lines[4] == 3);
    CHECK(lines[5] == 1);
    // The scope ended: nothing is installed any more.
    CHECK(EvalString("repr(__import__('sys').gettrace())") == "None");
  }

  TEST_CASE("a sys.settrace function is restored and keeps tracing") {
    ScopedRuntime runtime(TestOptions());
    GILGuard gil;
    pyscope::Exec(kFunction);
    pyscope::Exec(
        "import sys\n"
        "seen = []\n"
        "def tracer(frame, event, arg):\n"
        "    if frame.f_code.co_name == 'f':\n"
        "        seen.append(event)\n"
        "    return tracer\n"
        "sys.settrace(tracer)\n");
    pyscope::Exec("f(1)");
    const long before = EvalLong("len(seen)");
    CHECK(before > 0);
    int ours = 0;
    {
      ScopedTrace trace([&](const TraceEvent& event) {
        if (event.function() == "f") ++ours;
      });
      pyscope::Exec("f(1)");
      // The Python tracer saw nothing while ours was installed.
      CHECK(EvalLong("len(seen)") == before);
    }
    CHECK(ours > 0);
    CHECK(EvalString("'same' if sys.gettrace() is tracer else 'other'") ==
          "same");
    pyscope::Exec("f(1)");
    CHECK(EvalLong("len(seen)") == 2 * before);
    pyscope::Exec("sys.settrace(None)");
  }

  TEST_CASE("nested scopes restore in reverse order") {
    ScopedRuntime runtime(TestOptions());
    GILGuard gil;
    pyscope::Exec(kFunction);
    int outer = 0;
    int inner = 0;
    {
      ScopedTrace trace_outer([&](const TraceEvent& event) {
        if (event.kind() == TraceEventKind::kCall && event.function() == "f") {
          ++outer;
        }
      });
      pyscope::Exec("f(1)");
      {
        ScopedTrace trace_inner([&](const TraceEvent& event) {
          if (event.kind() == TraceEventKind::kCall &&
              event.function() == "f") {
            ++inner;
          }
        });
        pyscope::Exec("f(1)");
      }
      pyscope::Exec("f(1)");
    }
    pyscope::Exec("f(1)");
    CHECK(outer == 2);
    CHECK(inner == 1);
  }

  TEST_CASE("an exception from the callable becomes a Python exception") {
    ScopedRuntime runtime(TestOptions());
    GILGuard gil;
    pyscope::Exec(kFunction);
    {
      ScopedTrace trace([](const TraceEvent& event) {
        if (event.kind() == TraceEventKind::kLine && event.function() == "f" &&
            event.line() == 4) {
          throw std::runtime_error("refused line 4");
        }
      });
      try {
        pyscope::Exec("f(2)");
        FAIL("f(2) did not raise");
      } catch (const pyscope::PythonError& error) {
        CHECK(error.type_name() == "RuntimeError");
        CHECK(error.message().find("refused line 4") != std::string::npos);
        // Raised at the traced point: the traceback names f's line 4.
        CHECK(error.traceback().find("line 4, in f") != std::string::npos);
      }
      // Python can catch it, and the callable stays installed.
      pyscope::Exec(
          "try:\n"
          "    f(2)\n"
          "    caught = 'nothing'\n"
          "except RuntimeError as e:\n"
          "    caught = str(e)\n");
      CHECK(EvalString("caught").find("refused line 4") != std::string::npos);
    }
    // A PythonError thrown by pyscope::Exec inside the callable keeps its
    // type name and message in the RuntimeError.
    {
      ScopedTrace trace([](const TraceEvent& event) {
        if (event.kind() == TraceEventKind::kCall && event.function() == "f") {
          pyscope::Exec("raise KeyError('from the tracer')");
        }
      });
      try {
        pyscope::Exec("f(2)");
        FAIL("f(2) did not raise");
      } catch (const pyscope::PythonError& error) {
        CHECK(error.type_name() == "RuntimeError");
        CHECK(error.message().find("KeyError") != std::string::npos);
        CHECK(error.message().find("from the tracer") != std::string::npos);
      }
    }
    // A Python error left set by the callable is raised as such.
    {
      ScopedTrace trace([](const TraceEvent& event) {
        PYSCOPE_ASSERT_GIL_HELD();
        if (event.kind() == TraceEventKind::kCall && event.function() == "f") {
          PyErr_SetString(PyExc_ValueError, "set by the tracer");
        }
      });
      try {
        pyscope::Exec("f(2)");
        FAIL("f(2) did not raise");
      } catch (const pyscope::PythonError& error) {
        CHECK(error.type_name() == "ValueError");
        CHECK(error.message() == "set by the tracer");
      }
    }
    CHECK(EvalLong("f(3)") == 3);
  }

  TEST_CASE("the callable may run Python code without tracing itself") {
    ScopedRuntime runtime(TestOptions());
    GILGuard gil;
    pyscope::Exec(kFunction);
    pyscope::Exec("log = []");
    int events = 0;
    {
      ScopedTrace trace([&](const TraceEvent& event) {
        ++events;
        if (event.kind() == TraceEventKind::kCall && event.function() == "f") {
          pyscope::Exec("log.append('called')");
        }
      });
      pyscope::Exec("f(2)");
    }
    CHECK(EvalLong("len(log)") == 1);
    CHECK(events > 0);
    CHECK(events < 100);
  }

  TEST_CASE("ScopedProfile sees C calls by name and no lines") {
    ScopedRuntime runtime(TestOptions());
    GILGuard gil;
    pyscope::Exec(
        "def g(items):\n"
        "    return len(items) + sorted(items)[0]\n");
    std::vector<std::string> c_calls;
    int lines = 0;
    int c_returns = 0;
    {
      ScopedProfile profile([&](const TraceEvent& event) {
        if (event.kind() == TraceEventKind::kLine) ++lines;
        if (event.function() != "g") return;
        if (event.kind() == TraceEventKind::kCCall) {
          c_calls.push_back(event.c_function());
        }
        if (event.kind() == TraceEventKind::kCReturn) ++c_returns;
      });
      pyscope::Exec("value = g([3, 1, 2])");
    }
    CHECK(EvalLong("value") == 4);
    CHECK(lines == 0);
    CHECK(c_calls == std::vector<std::string>{"len", "sorted"});
    CHECK(c_returns == 2);
    CHECK(EvalString("repr(__import__('sys').getprofile())") == "None");
  }

  TEST_CASE("a sys.setprofile function is restored") {
    ScopedRuntime runtime(TestOptions());
    GILGuard gil;
    pyscope::Exec(
        "import sys\n"
        "def prof(frame, event, arg):\n"
        "    pass\n"
        "sys.setprofile(prof)\n");
    {
      ScopedProfile profile([](const TraceEvent&) {});
      CHECK(EvalString("'prof' if sys.getprofile() is prof else 'other'") ==
            "other");
    }
    CHECK(EvalString("'prof' if sys.getprofile() is prof else 'other'") ==
          "prof");
    pyscope::Exec("sys.setprofile(None)");
  }

  TEST_CASE("tracing inside a sub-interpreter") {
    ScopedRuntime runtime(TestOptions());
    pyscope::SubInterpreter sub;
    int lines = 0;
    {
      GILGuard gil(sub);
      pyscope::Exec(kFunction);
      ScopedTrace trace([&](const TraceEvent& event) {
        if (event.kind() == TraceEventKind::kLine && event.function() == "f") {
          ++lines;
        }
      });
      pyscope::Exec("f(1)");
    }
    CHECK(lines == 5);  // lines 2, 3, 4, 3, 5
    {
      GILGuard gil;
      CHECK(EvalString("repr(__import__('sys').gettrace())") == "None");
    }
  }

  TEST_CASE("without the GIL: a status, or pyscope::Error") {
    ScopedRuntime runtime(TestOptions());
    {
      ScopedTrace trace([](const TraceEvent&) {}, std::nothrow);
      CHECK(trace.status().code() == absl::StatusCode::kFailedPrecondition);
      CHECK(trace.status().message().find("GILGuard") != std::string::npos);
    }
    bool threw = false;
    try {
      ScopedProfile profile([](const TraceEvent&) {});
    } catch (const pyscope::Error& error) {
      threw = true;
      CHECK(error.status().code() == absl::StatusCode::kFailedPrecondition);
    }
    CHECK(threw);
  }

  TEST_CASE("all threads of an interpreter (3.12+), a status before") {
    ScopedRuntime runtime(TestOptions());
    GILGuard gil;
    pyscope::Exec(kFunction);
    pyscope::Exec(
        "import threading\n"
        "go = threading.Event()\n"
        "done = threading.Event()\n"
        "def worker():\n"
        "    go.wait()\n"
        "    f(2)\n"
        "    done.set()\n"
        "t = threading.Thread(target=worker)\n"
        "t.start()\n");
    std::set<unsigned long> threads;
    {
      pyscope::ScopedTraceAllThreads trace(
          [&](const TraceEvent& event) {
            if (event.kind() == TraceEventKind::kCall &&
                event.function() == "f") {
              threads.insert(PyThread_get_thread_ident());
            }
          },
          std::nothrow);
      if (pyscope::detail::compat::kHasTraceAllThreads) {
        REQUIRE(trace.ok());
        pyscope::Exec("f(1)\ngo.set()\ndone.wait(30)\nt.join(30)");
        CHECK(threads.size() == 2);
      } else {
        CHECK(trace.status().code() == absl::StatusCode::kUnimplemented);
        CHECK(trace.status().message().find("3.12") != std::string::npos);
        pyscope::Exec("go.set()\nt.join(30)");
      }
    }
    CHECK(EvalString("repr(__import__('sys').gettrace())") == "None");
  }

  TEST_CASE("all threads refuses when the threads disagree on what is set") {
    if (!pyscope::detail::compat::kHasTraceAllThreads) return;
    ScopedRuntime runtime(TestOptions());
    GILGuard gil;
    pyscope::Exec(
        "import sys, threading\n"
        "ready = threading.Event()\n"
        "release = threading.Event()\n"
        "def own(frame, event, arg):\n"
        "    return None\n"
        "def worker():\n"
        "    sys.setprofile(own)\n"
        "    ready.set()\n"
        "    release.wait()\n"
        "t = threading.Thread(target=worker)\n"
        "t.start()\n"
        "ready.wait(30)\n");
    {
      pyscope::ScopedProfileAllThreads profile([](const TraceEvent&) {},
                                               std::nothrow);
      CHECK(profile.status().code() == absl::StatusCode::kFailedPrecondition);
    }
    pyscope::Exec("release.set()\nt.join(30)");
  }
}

}  // namespace
