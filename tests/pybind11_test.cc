// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// pyscope guards and pybind11 (Debian's pybind11-dev, 2.10) in one
// program: pybind11's gil_scoped_release around host code that opens a
// GILGuard (also as a bound function's call_guard, called from Python), and
// pybind11's gil_scoped_acquire inside AllowThreads around one; pybind11
// objects and bound types used inside GILGuard scopes of a runtime pyscope
// started; a runtime pybind11::scoped_interpreter started, adopted by
// pyscope and finalized by pybind11; and pybind11 inside a pyscope
// SubInterpreter: what works there, and what pybind11 2.10 does not
// support (docs/pybind11.md). Each runs in a child process, since the
// failure modes are crashes and hangs.

#include <pybind11/embed.h>
#include <pybind11/eval.h>
#include <pybind11/pybind11.h>

#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "doctest/doctest.h"
#include "pyscope/pyscope.h"
#include "support/python_helpers.h"
#include "support/scenario.h"

namespace py = pybind11;

namespace {

using pyscope::AllowThreads;
using pyscope::GILGuard;
using pyscope::ScopedRuntime;
using pyscope::SubInterpreter;
using pyscope::SubInterpreterOptions;
using pyscope_test::ChildResult;
using pyscope_test::EvalLong;
using pyscope_test::HasFact;
using pyscope_test::PrintFact;
using pyscope_test::RunScenario;
using pyscope_test::TestOptions;

// A C++ type bound with pybind11 in a built-in module (registered in the
// inittab at static initialization, before any runtime starts).
class Tally {
 public:
  long Add(long amount) { return total_ += amount; }
  long total() const { return total_; }

 private:
  long total_ = 0;
};

PYBIND11_EMBEDDED_MODULE(pyscope_tally, m) {
  py::class_<Tally>(m, "Tally")
      .def(py::init<>())
      .def("add", &Tally::Add)
      .def_property_readonly("total", &Tally::total);
  m.def("square", [](long x) { return x * x; });
}

// Host code reached from a region where pybind11 released the GIL.
long HostCallback(long x) {
  GILGuard gil;
  py::object result = py::eval("callback_base", py::globals()) + py::int_(x);
  return result.cast<long>();
}

// pybind11 2.10 creates its per-process internals on first need (a bound
// type, a gil_scoped_* object), under PyGILState_Ensure, and ties them to
// the main interpreter: a host uses pybind11 on the main interpreter first,
// inside a guard, before any sub-interpreter scope. (Created inside a
// sub-interpreter scope they deadlock before 3.12 and are tied to the wrong
// interpreter after.)
void SetUpPybind11() {
  GILGuard gil;
  py::module_::import("pyscope_tally");
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

// pybind11 objects, bound types and casts inside GILGuard scopes of a
// runtime pyscope started: on native threads, an object kept across scopes
// and threads, and released inside a later scope.
PYSCOPE_SCENARIO(Pybind11ObjectsInsideGuards) {
  ScopedRuntime runtime(TestOptions());
  py::object tally;  // outlives the scopes below; used only inside guards
  {
    GILGuard gil;
    tally = py::module_::import("pyscope_tally").attr("Tally")();
    py::list items;
    for (long i = 1; i <= 4; ++i) items.append(py::int_(i));
    py::globals()["items"] = items;
    PrintFact("sum", py::eval("sum(items)").cast<long>());
  }
  std::vector<std::thread> workers;
  for (long i = 1; i <= 4; ++i) {
    workers.emplace_back([&tally, i] {
      GILGuard gil;
      tally.attr("add")(i * 10);
      py::module_ math = py::module_::import("math");
      const long root =
          math.attr("isqrt")(
                  py::module_::import("pyscope_tally").attr("square")(i))
              .cast<long>();
      if (root != i) std::printf("bad root %ld\n", root);
    });
  }
  for (std::thread& worker : workers) worker.join();
  {
    GILGuard gil;
    PrintFact("total", tally.attr("total").cast<long>());
    PrintFact("native_total", tally.cast<Tally&>().total());
    tally = py::object();  // the last reference goes inside a guard
  }
  PrintFact("finalize_ok", runtime.Finalize().ok());
  return 0;
}

// A runtime pybind11::scoped_interpreter started: pyscope adopts it, worker
// threads use GILGuard while the main thread has released the GIL the
// pybind11 way, pyscope's Finalize closes the gate and runs its exit
// callbacks, and pybind11 finalizes Python afterwards.
PYSCOPE_SCENARIO(ScopedInterpreterAdoptedByPyscope) {
  {
    py::scoped_interpreter interpreter;
    auto runtime = ScopedRuntime::Adopt(TestOptions());
    if (!runtime.ok()) {
      std::printf("adopt: %s\n", runtime.status().ToString().c_str());
      return 1;
    }
    PrintFact("adopted", (*runtime)->adopted());
    py::exec("hits = []");
    (*runtime)->AddExitCallback([] {
      PrintFact("exit_callback_hits", py::eval("len(hits)").cast<long>());
    });
    {
      py::gil_scoped_release release;  // the main thread lets workers in
      std::vector<std::thread> workers;
      for (int i = 0; i < 4; ++i) {
        workers.emplace_back([i] {
          GILGuard gil;
          py::module_::import("__main__").attr("hits").attr("append")(i);
        });
      }
      for (std::thread& worker : workers) worker.join();
    }
    PrintFact("hits", py::eval("sum(hits)").cast<long>());
    // pyscope's Finalize runs with the GIL held by the host's main thread
    // (as pybind11 left it); it does not finalize Python.
    PrintFact("finalize_ok", (*runtime)->Finalize().ok());
    PrintFact("still_initialized", Py_IsInitialized());
    std::thread late([] {
      GILGuard gil(std::nothrow);
      PrintFact("late_refused", !gil.ok());
    });
    {
      py::gil_scoped_release release;
      late.join();
    }
    PrintFact("pybind11_after", py::eval("6 * 7").cast<long>());
  }  // ~scoped_interpreter: Py_Finalize
  PrintFact("initialized_after", Py_IsInitialized());
  return 0;
}

// pybind11 in a sub-interpreter entered with pyscope. pybind11 2.10 has no
// sub-interpreter support: its internals (type registry, thread-state key)
// are per process and tied to the interpreter that first used it. Its
// object wrappers are thin C API calls on the current thread state, so they
// work in whichever interpreter pyscope attached the thread to.
PYSCOPE_SCENARIO(Pybind11ObjectsInSubInterpreter) {
  ScopedRuntime runtime(TestOptions());
  SetUpPybind11();
  SubInterpreter sub;
  std::thread worker([&sub] {
    GILGuard gil(sub);
    py::dict globals = py::module_::import("__main__").attr("__dict__");
    py::exec("marker = 40 + 2", globals);
    PrintFact("sub_marker", globals["marker"].cast<long>());
    PrintFact(
        "sub_str_ok",
        py::str(py::make_tuple(1, "a")).cast<std::string>() == "(1, 'a')");
    {
      py::gil_scoped_release release;  // saves and restores the sub's state
    }
    PrintFact("in_sub_after_release",
              PyThreadState_Get()->interp == sub.interpreter_state());
  });
  worker.join();
  {
    GILGuard gil;
    PrintFact(
        "main_has_marker",
        py::module_::import("__main__").attr("__dict__").contains("marker"));
  }
  PrintFact("end_ok", sub.End().ok());
  PrintFact("finalize_ok", runtime.Finalize().ok());
  return 0;
}

// Bound C++ types in a sub-interpreter. A legacy sub-interpreter gets
// pybind11's single-phase module as CPython copies it from the main
// interpreter: the same type objects, which belong to the main
// interpreter. An own-GIL one (3.12+) refuses the import. The free-threaded
// build has no legacy sub-interpreters (pyscope refuses Legacy() there), and
// its Default() ones refuse single-phase modules like own-GIL ones.

// Imports pyscope_tally in the current interpreter; prints
// "<name>_refused=<ImportError message>" ("" if imported), then whether the
// interpreter ended cleanly.
void PrintTallyRefusal(SubInterpreter& sub, const char* name) {
  sub.Call([name] {
    PYSCOPE_ASSERT_GIL_HELD();
    py::dict globals = py::module_::import("__main__").attr("__dict__");
    py::exec(R"py(
try:
    import pyscope_tally
    refused = ''
except ImportError as error:
    refused = str(error)
)py",
             globals);
    std::printf("%s_refused=%s\n", name,
                globals["refused"].cast<std::string>().c_str());
  });
  PrintFact((std::string(name) + "_end_ok").c_str(), sub.End().ok());
}

PYSCOPE_SCENARIO(Pybind11BoundTypesInSubInterpreter) {
  ScopedRuntime runtime(TestOptions());
  long main_type_id = 0;
  {
    GILGuard gil;
    main_type_id =
        py::eval("id(__import__('pyscope_tally').Tally)").cast<long>();
  }
  if (pyscope::detail::compat::kSubInterpretersLoadSinglePhaseModules) {
    SubInterpreter legacy(SubInterpreterOptions::Legacy());
    legacy.Call([&] {
      PYSCOPE_ASSERT_GIL_HELD();
      py::module_ module = py::module_::import("pyscope_tally");
      py::object tally = module.attr("Tally")();
      tally.attr("add")(5);
      PrintFact("legacy_total", tally.attr("total").cast<long>());
      PrintFact(
          "legacy_same_type",
          py::eval("id(__import__('pyscope_tally').Tally)").cast<long>() ==
              main_type_id);
    });
    PrintFact("legacy_end_ok", legacy.End().ok());
  } else {
    PrintFact("legacy_unimplemented",
              SubInterpreter::Create(SubInterpreterOptions::Legacy())
                      .status()
                      .code() == absl::StatusCode::kUnimplemented);
    SubInterpreter default_sub;
    PrintTallyRefusal(default_sub, "default");
  }
  if (pyscope::detail::compat::kHasPerInterpreterGil) {
    SubInterpreter isolated(SubInterpreterOptions::Isolated());
    PrintTallyRefusal(isolated, "isolated");
  }
  PrintFact("finalize_ok", runtime.Finalize().ok());
  return 0;
}

// pybind11 code that takes the GIL itself (gil_scoped_acquire, and
// error_already_set, whose destructor uses it) inside a sub-interpreter
// scope on a native thread. It looks for the thread's PyGILState thread
// state: from 3.12 that is the attached sub-interpreter state, and it
// works; before, it is a main-interpreter state, and the thread blocks
// forever on the GIL it already holds.
PYSCOPE_SCENARIO(Pybind11GilAcquireInSubInterpreter) {
  ScopedRuntime runtime(TestOptions());
  SetUpPybind11();
  SubInterpreter sub;
  std::thread worker([&sub] {
    GILGuard gil(sub);
    std::printf("entered\n");
    std::fflush(stdout);
    try {
      py::exec("1 / 0", py::module_::import("__main__").attr("__dict__"));
    } catch (const py::error_already_set& error) {
      std::printf("caught=%s\n", error.what());
    }
    {
      py::gil_scoped_acquire acquire;
      PrintFact("acquire_in_sub",
                PyThreadState_Get()->interp == sub.interpreter_state());
    }
  });
  worker.join();
  PrintFact("end_ok", sub.End().ok());
  PrintFact("finalize_ok", runtime.Finalize().ok());
  return 0;
}

TEST_SUITE("pybind11") {
  TEST_CASE("pybind11 objects and bound types inside GILGuard scopes") {
    ChildResult child = RunScenario("Pybind11ObjectsInsideGuards");
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    CHECK(HasFact(child, "sum=10"));
    CHECK(HasFact(child, "total=100"));
    CHECK(HasFact(child, "native_total=100"));
    CHECK(child.out.find("bad root") == std::string::npos);
    CHECK(HasFact(child, "finalize_ok=1"));
  }

  TEST_CASE(
      "a scoped_interpreter runtime adopted by pyscope, finalized by "
      "pybind11") {
    ChildResult child = RunScenario("ScopedInterpreterAdoptedByPyscope");
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    CHECK(HasFact(child, "adopted=1"));
    CHECK(HasFact(child, "hits=6"));
    CHECK(HasFact(child, "exit_callback_hits=4"));
    CHECK(HasFact(child, "finalize_ok=1"));
    CHECK(HasFact(child, "still_initialized=1"));
    CHECK(HasFact(child, "late_refused=1"));
    CHECK(HasFact(child, "pybind11_after=42"));
    CHECK(HasFact(child, "initialized_after=0"));
  }

  TEST_CASE("pybind11 objects inside a SubInterpreter belong to it") {
    ChildResult child = RunScenario("Pybind11ObjectsInSubInterpreter");
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    CHECK(HasFact(child, "sub_marker=42"));
    CHECK(HasFact(child, "sub_str_ok=1"));
    CHECK(HasFact(child, "in_sub_after_release=1"));
    CHECK(HasFact(child, "main_has_marker=0"));
    CHECK(HasFact(child, "end_ok=1"));
    CHECK(HasFact(child, "finalize_ok=1"));
  }

  TEST_CASE(
      "pybind11 bound types: shared with a legacy sub-interpreter, "
      "refused by an own-GIL one") {
    ChildResult child = RunScenario("Pybind11BoundTypesInSubInterpreter");
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    const std::string refusal =
        "_refused=module pyscope_tally does not support loading in "
        "subinterpreters";
    if (pyscope::detail::compat::kSubInterpretersLoadSinglePhaseModules) {
      CHECK(HasFact(child, "legacy_total=5"));
      CHECK(HasFact(child, "legacy_same_type=1"));
      CHECK(HasFact(child, "legacy_end_ok=1"));
    } else {
      CHECK(HasFact(child, "legacy_unimplemented=1"));
      CHECK(child.out.find("default" + refusal) != std::string::npos);
      CHECK(HasFact(child, "default_end_ok=1"));
    }
    if (pyscope::detail::compat::kHasPerInterpreterGil) {
      CHECK(child.out.find("isolated" + refusal) != std::string::npos);
      CHECK(HasFact(child, "isolated_end_ok=1"));
    }
    CHECK(HasFact(child, "finalize_ok=1"));
  }

  TEST_CASE(
      "pybind11's own GIL acquisition inside a SubInterpreter: works "
      "from 3.12, blocks the thread before") {
    if (pyscope::detail::compat::kAttachRebindsGilState) {
      ChildResult child = RunScenario("Pybind11GilAcquireInSubInterpreter");
      INFO(child.Describe());
      REQUIRE(child.ExitedWith(0));
      CHECK(child.out.find("caught=ZeroDivisionError: division by zero") !=
            std::string::npos);
      CHECK(HasFact(child, "acquire_in_sub=1"));
      CHECK(HasFact(child, "end_ok=1"));
      CHECK(HasFact(child, "finalize_ok=1"));
    } else {
      // Unsupported: the child deadlocks, and is killed at the timeout.
      ChildResult child =
          RunScenario("Pybind11GilAcquireInSubInterpreter", absl::Seconds(3));
      INFO(child.Describe());
      CHECK(child.timed_out);
      CHECK(child.out.find("entered\n") != std::string::npos);
      CHECK(child.out.find("caught=") == std::string::npos);
    }
  }

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
