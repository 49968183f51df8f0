// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// AtInterpreterExit: hooks run when their interpreter ends (main: at
// finalization; sub: at End() or when finalization ends it), with Python
// working, in the interpreter, last registered first, interleaved with
// Python's own atexit functions; a failing hook is reported and the others
// still run. The runs are scenarios so that their order is read from one
// stdout.

#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "doctest/doctest.h"
#include "pyscope/pyscope.h"
#include "support/python_helpers.h"
#include "support/scenario.h"

namespace {

using pyscope::AtInterpreterExit;
using pyscope::GILGuard;
using pyscope::ScopedRuntime;
using pyscope_test::ChildResult;
using pyscope_test::HasFact;
using pyscope_test::RunScenario;

// A hook that prints its name, the interpreter it runs in and whether
// Python works there.
absl::AnyInvocable<void()> Printer(std::string name) {
  return [name]() PYSCOPE_REQUIRES_GIL {
    const long interp = static_cast<long>(PyInterpreterState_GetID(
        PyThreadState_GetInterpreter(PyThreadState_Get())));
    const bool works =
        pyscope::TryExec("import json\n_probe = json.dumps([1])").ok();
    std::printf("hook %s in=%ld python=%s\n", name.c_str(), interp,
                works ? "works" : "broken");
    std::fflush(stdout);
  };
}

PYSCOPE_SCENARIO(MainInterpreterHooks) {
  auto runtime = ScopedRuntime::Create(pyscope_test::TestOptions());
  if (!runtime.ok()) return 2;
  {
    GILGuard gil;
    if (!AtInterpreterExit(Printer("A")).ok()) return 3;
    pyscope::Exec(
        "import atexit\n"
        "atexit.register(lambda: print('python P', flush=True))\n");
    if (!AtInterpreterExit([] {
           throw std::runtime_error("hook B failed");
         }).ok()) {
      return 3;
    }
    if (!AtInterpreterExit(Printer("C")).ok()) return 3;
  }
  (*runtime)->AddExitCallback([] {
    std::printf("exit callback\n");
    std::fflush(stdout);
  });
  const absl::Status finalized = (*runtime)->Finalize();
  std::printf("finalized=%s\n", finalized.ok() ? "ok" : "failed");
  return 0;
}

PYSCOPE_SCENARIO(SubInterpreterHooks) {
  auto runtime = ScopedRuntime::Create(pyscope_test::TestOptions());
  if (!runtime.ok()) return 2;
  {
    pyscope::SubInterpreter sub;
    std::printf("sub id=%ld\n", static_cast<long>(sub.id()));
    std::fflush(stdout);
    // Registered from another thread, without holding any GIL.
    std::thread other([&] {
      if (!AtInterpreterExit(sub, Printer("S1")).ok()) std::printf("bad\n");
    });
    other.join();
    {
      GILGuard gil(sub);
      if (!AtInterpreterExit(Printer("S2")).ok()) return 3;
      pyscope::Exec(
          "import atexit\n"
          "atexit.register(lambda: print('python in sub', flush=True))\n");
    }
    std::printf("ending\n");
    std::fflush(stdout);
    if (!sub.End().ok()) return 4;
    std::printf("ended\n");
    absl::Status after = AtInterpreterExit(sub, Printer("late"));
    std::printf("after_end=%s\n",
                absl::StatusCodeToString(after.code()).c_str());
  }
  // A live sub-interpreter ended by the runtime's finalization.
  pyscope::SubInterpreter kept;
  if (!AtInterpreterExit(kept, Printer("K")).ok()) return 3;
  {
    GILGuard gil;
    if (!AtInterpreterExit(Printer("M")).ok()) return 3;
  }
  std::printf("finalizing\n");
  std::fflush(stdout);
  const absl::Status finalized = (*runtime)->Finalize();
  std::printf("finalized=%s\n", finalized.ok() ? "ok" : "failed");
  absl::Status no_gil = AtInterpreterExit(Printer("none"));
  std::printf("no_gil=%s\n", absl::StatusCodeToString(no_gil.code()).c_str());
  return 0;
}

TEST_SUITE("exit_hooks") {
  TEST_CASE(
      "main interpreter: LIFO with atexit, Python works, failures reported") {
    ChildResult child = RunScenario("MainInterpreterHooks");
    REQUIRE_MESSAGE(child.ExitedWith(0), child.Describe());
    CHECK(child.out ==
          "exit callback\n"
          "hook C in=0 python=works\n"
          "python P\n"
          "hook A in=0 python=works\n"
          "finalized=ok\n");
    CHECK(child.err.find("hook B failed") != std::string::npos);
    // (CPython's wording differs: "Error in atexit._run_exitfuncs" before
    // 3.10, "Exception ignored in atexit callback" after.)
    CHECK(child.err.find("RuntimeError") != std::string::npos);
    CHECK(child.err.find("exit_hooks_test.cc:") != std::string::npos);
  }

  TEST_CASE("sub-interpreters: at End() and at finalization, inside them") {
    ChildResult child = RunScenario("SubInterpreterHooks");
    REQUIRE_MESSAGE(child.ExitedWith(0), child.Describe());
    const std::string id = pyscope_test::FactOf(child, "sub id");
    REQUIRE(!id.empty());
    CHECK(child.out.find("ending\n"
                         "python in sub\n"
                         "hook S2 in=" +
                         id +
                         " python=works\n"
                         "hook S1 in=" +
                         id +
                         " python=works\n"
                         "ended\n") != std::string::npos);
    CHECK(HasFact(child, "after_end=FAILED_PRECONDITION"));
    // Finalization ends the sub-interpreter first, then the main one.
    const size_t k = child.out.find("hook K in=");
    const size_t m = child.out.find("hook M in=0 python=works");
    CHECK(child.out.find("finalizing\n") < k);
    CHECK(k < m);
    CHECK(child.out.find("hook K in=0") == std::string::npos);
    CHECK(HasFact(child, "finalized=ok"));
    CHECK(HasFact(child, "no_gil=FAILED_PRECONDITION"));
  }
}

}  // namespace
