// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// pyscope guards and pybind11 (Debian's pybind11-dev, 2.10) in one
// program: pybind11's gil_scoped_release around host code that opens a
// GILGuard (also as a bound function's call_guard, called from Python), and
// pybind11's gil_scoped_acquire inside AllowThreads around one. Each runs
// in a child process, since the failure modes are crashes and hangs.

#include <pybind11/eval.h>
#include <pybind11/pybind11.h>

#include <cstdio>
#include <string>
#include <thread>

#include "doctest/doctest.h"
#include "pyscope/pyscope.h"
#include "support/python_helpers.h"
#include "support/scenario.h"

namespace py = pybind11;

namespace {

using pyscope::AllowThreads;
using pyscope::GILGuard;
using pyscope::ScopedRuntime;
using pyscope_test::ChildResult;
using pyscope_test::EvalLong;
using pyscope_test::HasFact;
using pyscope_test::PrintFact;
using pyscope_test::RunScenario;
using pyscope_test::TestOptions;

// Host code reached from a region where pybind11 released the GIL.
long HostCallback(long x) {
  GILGuard gil;
  py::object result = py::eval("callback_base", py::globals()) + py::int_(x);
  return result.cast<long>();
}

// pybind11 2.10 sets up its internals under the GIL, recording the thread
// state it finds: do it on the main thread inside a guard, as a host does
// by using pybind11 there first.
void SetUpPybind11() {
  GILGuard gil;
  py::exec("callback_base = 100");
}

PYSCOPE_SCENARIO(GuardInsideGilScopedRelease) {
  ScopedRuntime runtime(TestOptions());
  SetUpPybind11();
  std::thread worker([] {
    GILGuard gil;
    long value = 0;
    {
      py::gil_scoped_release release;
      value = HostCallback(1);
    }
    PrintFact("value", value);
    PrintFact("after", py::eval("callback_base + 2").cast<long>());
  });
  worker.join();
  PrintFact("finalize_ok", runtime.Finalize().ok());
  return 0;
}

PYSCOPE_SCENARIO(CallGuardReleaseCallsHost) {
  ScopedRuntime runtime(TestOptions());
  SetUpPybind11();
  {
    GILGuard gil;
    py::globals()["call_host"] = py::cpp_function(
        &HostCallback, py::call_guard<py::gil_scoped_release>());
    py::exec(R"py(
import threading
direct = call_host(5)
from_threads = []
def run(i):
    from_threads.append(call_host(i))
threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
)py");
    PrintFact("direct", EvalLong("direct"));
    PrintFact("from_threads", EvalLong("sum(from_threads)"));
  }
  std::thread worker([] {
    GILGuard gil;
    PrintFact("from_native", EvalLong("call_host(7)"));
  });
  worker.join();
  PrintFact("finalize_ok", runtime.Finalize().ok());
  return 0;
}

PYSCOPE_SCENARIO(GuardInsideGilScopedAcquireInAllowThreads) {
  ScopedRuntime runtime(TestOptions());
  SetUpPybind11();
  std::thread worker([] {
    GILGuard gil;
    long value = 0;
    {
      AllowThreads nogil;
      py::gil_scoped_acquire acquire;
      value = HostCallback(3);
    }
    PrintFact("value", value);
    // And the other way round: AllowThreads inside gil_scoped_acquire.
    {
      py::gil_scoped_release release;
      py::gil_scoped_acquire acquire;
      AllowThreads nogil;
      PrintFact("nested", HostCallback(4));
    }
  });
  worker.join();
  std::thread fresh([] {
    // A thread that pybind11 attaches first.
    py::gil_scoped_acquire acquire;
    PrintFact("fresh", HostCallback(6));
  });
  fresh.join();
  PrintFact("finalize_ok", runtime.Finalize().ok());
  return 0;
}

TEST_SUITE("pybind11") {
  TEST_CASE("a GILGuard inside gil_scoped_release takes the GIL") {
    ChildResult child = RunScenario("GuardInsideGilScopedRelease");
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    CHECK(HasFact(child, "value=101"));
    CHECK(HasFact(child, "after=102"));
    CHECK(HasFact(child, "finalize_ok=1"));
  }

  TEST_CASE("a call_guard<gil_scoped_release> function calls host code") {
    ChildResult child = RunScenario("CallGuardReleaseCallsHost");
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    CHECK(HasFact(child, "direct=105"));
    CHECK(HasFact(child, "from_threads=406"));
    CHECK(HasFact(child, "from_native=107"));
    CHECK(HasFact(child, "finalize_ok=1"));
  }

  TEST_CASE("a GILGuard inside gil_scoped_acquire inside AllowThreads") {
    ChildResult child =
        RunScenario("GuardInsideGilScopedAcquireInAllowThreads");
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    CHECK(HasFact(child, "value=103"));
    CHECK(HasFact(child, "nested=104"));
    CHECK(HasFact(child, "fresh=106"));
    CHECK(HasFact(child, "finalize_ok=1"));
  }
}

}  // namespace
