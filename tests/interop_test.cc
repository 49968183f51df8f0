// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// pyscope guards mixed with raw C API calls the way hosts mix them: a GIL
// released by code pyscope does not see (Py_BEGIN_ALLOW_THREADS,
// PyEval_SaveThread) around host code that opens a GILGuard; a raw
// PyGILState_Ensure inside AllowThreads around one; thread states the host
// made by hand; threads that exit with guards still live; guards in
// thread_local destructors. Each runs in a child process (the failure
// modes are hangs, CPython fatal errors and crashes) and prints facts that
// the test checks.

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "doctest/doctest.h"
#include "pyscope/pyscope.h"
#include "support/python_helpers.h"
#include "support/scenario.h"

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

// Host code that takes the GIL for itself, as a callback would: it cannot
// know what its caller holds.
long HostCallback(const char* code, const char* expression) {
  GILGuard gil;
  pyscope::Exec(code);
  return EvalLong(expression);
}

bool AttachedNow() {
  return pyscope::detail::compat::CurrentThreadStateUnchecked() != nullptr;
}

// --- A GILGuard under a release pyscope did not make. ---

PYSCOPE_SCENARIO(GuardInsideRawAllowThreads) {
  ScopedRuntime runtime(TestOptions());
  std::thread worker([] {
    GILGuard outer;
    PyThreadState* mine = PyThreadState_Get();
    long value = 0;
    Py_BEGIN_ALLOW_THREADS
      PrintFact("released", !AttachedNow());
      value = HostCallback("x = 40 + 2", "x");
      PrintFact("released_again", !AttachedNow());
    Py_END_ALLOW_THREADS
    PrintFact("value", value);
    PrintFact("same_state", PyThreadState_Get() == mine);
    PrintFact("after", EvalLong("x + 1"));
  });
  worker.join();
  PrintFact("finalize_ok", runtime.Finalize().ok());
  return 0;
}

PYSCOPE_SCENARIO(GuardAfterRawSaveThread) {
  ScopedRuntime runtime(TestOptions());
  GILGuard outer;
  PyThreadState* saved = PyEval_SaveThread();
  {
    // Nested twice, and an AllowThreads inside: each level is real.
    GILGuard inner;
    PrintFact("inner_attached", AttachedNow());
    {
      GILGuard innermost;
      pyscope::Exec("y = 5");
      AllowThreads nogil;
      PrintFact("nogil_released", !AttachedNow());
    }
    PrintFact("y", EvalLong("y * 2"));
  }
  PrintFact("released_after_inner", !AttachedNow());
  PyEval_RestoreThread(saved);
  PrintFact("restored", PyThreadState_Get() == saved);
  return 0;
}

// A raw release inside a guard of a sub-interpreter: the inner guard goes
// back to the sub-interpreter, not to the main one.
PYSCOPE_SCENARIO(GuardInsideRawReleaseInSubInterpreter) {
  ScopedRuntime runtime(TestOptions());
  pyscope::SubInterpreter sub;
  {
    GILGuard in_sub(sub);
    pyscope::Exec("where = 'sub'");
    PyThreadState* saved = PyEval_SaveThread();
    {
      GILGuard inner;
      PrintFact("inner_in_sub",
                PyThreadState_GetInterpreter(PyThreadState_Get()) ==
                    sub.interpreter_state());
      PrintFact("where", pyscope_test::EvalString("where"));
    }
    PyEval_RestoreThread(saved);
  }
  PrintFact("end_ok", sub.End().ok());
  return 0;
}

// AllowThreads inside a raw release is a misuse (there is no GIL to
// release), reported rather than a CPython fatal error.
PYSCOPE_SCENARIO(AllowThreadsInsideRawRelease) {
  ScopedRuntime runtime(TestOptions());
  pyscope_test::RecordingMisuseHandler recording;
  {
    GILGuard outer;
    PyThreadState* saved = PyEval_SaveThread();
    { AllowThreads nogil; }
    PyEval_RestoreThread(saved);
    PrintFact("still_attached", PyThreadState_Get() == saved);
  }
  for (const pyscope::MisuseReport& report : recording.reports()) {
    PrintFact("misuse", pyscope::MisuseName(report.misuse));
  }
  return 0;
}

// --- A GILGuard inside AllowThreads under a raw PyGILState_Ensure. ---

PYSCOPE_SCENARIO(GuardInsideRawEnsureInAllowThreads) {
  ScopedRuntime runtime(TestOptions());
  std::thread worker([] {
    GILGuard gil;
    pyscope::Exec("z = 1");
    long value = 0;
    {
      AllowThreads nogil;
      // A library called here takes the GIL its own way, then calls back.
      PyGILState_STATE state = PyGILState_Ensure();
      value = HostCallback("z += 1", "z");
      PrintFact("still_attached_in_ensure", AttachedNow());
      PyGILState_Release(state);
      PrintFact("released_in_allow_threads", !AttachedNow());
    }
    PrintFact("value", value);
    PrintFact("after", EvalLong("z"));
  });
  worker.join();
  PrintFact("finalize_ok", runtime.Finalize().ok());
  return 0;
}

// The host attaches a thread state it made itself, on a thread that also
// has pyscope's cached one; a guard opened then borrows the host's.
PYSCOPE_SCENARIO(GuardUnderHandMadeThreadState) {
  ScopedRuntime runtime(TestOptions());
  std::thread worker([&runtime] {
    { GILGuard warm; }  // pyscope's cached state exists for this thread
    PyThreadState* mine = PyThreadState_New(runtime.main_interpreter());
    PyEval_RestoreThread(mine);
    {
      GILGuard gil;
      PrintFact("borrowed_host_state", PyThreadState_Get() == mine);
      pyscope::Exec("w = 3");
    }
    PrintFact("host_state_still_current", PyThreadState_Get() == mine);
    {
      AllowThreads nogil;
      PyEval_RestoreThread(mine);  // (not the pattern to follow, but seen)
      PrintFact("nested", HostCallback("w *= 2", "w"));
      PyEval_SaveThread();
    }
    PyThreadState_Clear(mine);
    PyThreadState_DeleteCurrent();
    PrintFact("detached", !AttachedNow());
  });
  worker.join();
  PrintFact("finalize_ok", runtime.Finalize().ok());
  return 0;
}

// --- Threads that exit with guards still live. ---

struct LeakedGuards {
  std::optional<GILGuard> gil;
};

PYSCOPE_SCENARIO(ThreadExitsHoldingGuard) {
  ScopedRuntime runtime(TestOptions());
  auto leaked = std::make_unique<LeakedGuards>();
  std::thread worker([&leaked] {
    pthread_setname_np(pthread_self(), "leaky-worker");
    PrintFact("thread", pyscope_test::ThreadId());
    // (Inside std::optional the default argument would name <optional>.)
    PrintFact("line", __LINE__ + 1);
    leaked->gil.emplace(pyscope::SourceLocation::Current());
    pyscope::Exec("leaked = True");
  });
  worker.join();
  std::printf("unreachable: the thread exited holding the GIL\n");
  return 0;
}

PYSCOPE_SCENARIO(ThreadExitsHoldingGuardRecovered) {
  ScopedRuntime runtime(TestOptions());
  pyscope_test::RecordingMisuseHandler recording;
  auto leaked = std::make_unique<LeakedGuards>();
  std::thread worker([&leaked] {
    leaked->gil.emplace();
    pyscope::Exec("leaked = True");
  });
  worker.join();
  {
    // The runtime stays usable: the GIL was released at thread exit.
    GILGuard gil;
    PrintFact("leaked_seen", EvalLong("int(leaked)"));
  }
  std::thread other([] { PrintFact("other", HostCallback("n = 9", "n")); });
  other.join();
  leaked.reset();  // destroyed on another thread: reported, does nothing
  PrintFact("finalize_ok", runtime.Finalize().ok());
  for (const pyscope::MisuseReport& report : recording.reports()) {
    PrintFact("misuse", pyscope::MisuseName(report.misuse));
    if (report.message.find("which has exited") != std::string::npos) {
      PrintFact("named_exited", 1);
    }
  }
  return 0;
}

void* volatile kept_alive = nullptr;

PYSCOPE_SCENARIO(ThreadExitsInsideSubInterpreterRecovered) {
  ScopedRuntime runtime(TestOptions());
  pyscope_test::RecordingMisuseHandler recording;
  pyscope::SubInterpreter sub;
  struct Leaked {
    std::optional<GILGuard> gil;
  };
  auto leaked = std::make_unique<Leaked>();
  std::thread worker([&] { leaked->gil.emplace(sub); });
  worker.join();
  // Ending waits for no thread: the exited one left the interpreter.
  PrintFact("end_ok", sub.End().ok());
  PrintFact("finalize_ok", runtime.Finalize().ok());
  for (const pyscope::MisuseReport& report : recording.reports()) {
    PrintFact("misuse", pyscope::MisuseName(report.misuse));
  }
  // Never destroyed (its record stays valid anyway); kept reachable so
  // that LeakSanitizer does not count it.
  kept_alive = leaked.release();
  return 0;
}

// --- Guards in thread_local destructors. ---

std::atomic<int> late_runs{0};

struct LateUser {
  bool armed = false;
  ~LateUser() {
    if (!armed) return;
    GILGuard gil;
    pyscope::Exec("late_count += 1");
    late_runs.fetch_add(1);
  }
};

thread_local LateUser early_local;  // constructed before the first guard
thread_local LateUser later_local;  // constructed after it

PYSCOPE_SCENARIO(GuardsInThreadLocalDestructors) {
  ScopedRuntime runtime(TestOptions());
  int base = 0;
  {
    GILGuard gil;
    pyscope::Exec("late_count = 0");
    base = pyscope_test::CountThreadStates(runtime.main_interpreter());
  }
  for (int i = 0; i < 4; ++i) {
    std::thread worker([] {
      early_local.armed = true;
      { GILGuard gil; }
      later_local.armed = true;
    });
    worker.join();
  }
  GILGuard gil;
  PrintFact("late_count", EvalLong("late_count"));
  PrintFact("late_runs", late_runs.load());
  PrintFact("states_left",
            pyscope_test::CountThreadStates(runtime.main_interpreter()) - base);
  return 0;
}

TEST_SUITE("interop") {
  TEST_CASE("a GILGuard inside a raw Py_BEGIN_ALLOW_THREADS takes the GIL") {
    ChildResult child = RunScenario("GuardInsideRawAllowThreads");
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    CHECK(HasFact(child, "released=1"));
    CHECK(HasFact(child, "released_again=1"));
    CHECK(HasFact(child, "value=42"));
    CHECK(HasFact(child, "same_state=1"));
    CHECK(HasFact(child, "after=43"));
    CHECK(HasFact(child, "finalize_ok=1"));
  }

  TEST_CASE("guards after a raw PyEval_SaveThread are real at every level") {
    ChildResult child = RunScenario("GuardAfterRawSaveThread");
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    CHECK(HasFact(child, "inner_attached=1"));
    CHECK(HasFact(child, "nogil_released=1"));
    CHECK(HasFact(child, "y=10"));
    CHECK(HasFact(child, "released_after_inner=1"));
    CHECK(HasFact(child, "restored=1"));
  }

  TEST_CASE("a raw release inside a sub-interpreter scope stays there") {
    ChildResult child = RunScenario("GuardInsideRawReleaseInSubInterpreter");
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    CHECK(HasFact(child, "inner_in_sub=1"));
    CHECK(HasFact(child, "where=sub"));
    CHECK(HasFact(child, "end_ok=1"));
  }

  TEST_CASE("AllowThreads inside a raw release is reported") {
    ChildResult child = RunScenario("AllowThreadsInsideRawRelease");
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    CHECK(HasFact(child, "still_attached=1"));
    CHECK(HasFact(child, "misuse=AllowThreadsWithoutGil"));
  }

  TEST_CASE("a GILGuard under a raw PyGILState_Ensure in AllowThreads") {
    ChildResult child = RunScenario("GuardInsideRawEnsureInAllowThreads");
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    CHECK(HasFact(child, "still_attached_in_ensure=1"));
    CHECK(HasFact(child, "released_in_allow_threads=1"));
    CHECK(HasFact(child, "value=2"));
    CHECK(HasFact(child, "after=2"));
    CHECK(HasFact(child, "finalize_ok=1"));
  }

  TEST_CASE("a GILGuard borrows a thread state the host made by hand") {
    ChildResult child = RunScenario("GuardUnderHandMadeThreadState");
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    CHECK(HasFact(child, "borrowed_host_state=1"));
    CHECK(HasFact(child, "host_state_still_current=1"));
    CHECK(HasFact(child, "nested=6"));
    CHECK(HasFact(child, "detached=1"));
    CHECK(HasFact(child, "finalize_ok=1"));
  }

  TEST_CASE("a thread exiting with a live guard is reported, not a hang") {
    ChildResult child = RunScenario("ThreadExitsHoldingGuard");
    INFO(child.Describe());
    REQUIRE(child.KilledBy(SIGABRT));
    const std::string thread = child.out.substr(child.out.find("thread=") + 7);
    const std::string line = child.out.substr(child.out.find("line=") + 5);
    CHECK(child.err.find("pyscope misuse (ThreadExitedInsideGuard): GILGuard "
                         "created at ") != std::string::npos);
    CHECK(child.err.find("interop_test.cc:" +
                         line.substr(0, line.find('\n'))) != std::string::npos);
    CHECK(child.err.find("was still live when its thread exited, on thread " +
                         thread.substr(0, thread.find('\n')) +
                         " (\"leaky-worker\")") != std::string::npos);
    CHECK(child.out.find("unreachable") == std::string::npos);
  }

  TEST_CASE("after a thread exited with a live guard the runtime works") {
    ChildResult child = RunScenario("ThreadExitsHoldingGuardRecovered");
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    CHECK(HasFact(child, "leaked_seen=1"));
    CHECK(HasFact(child, "other=9"));
    CHECK(HasFact(child, "finalize_ok=1"));
    CHECK(HasFact(child, "misuse=ThreadExitedInsideGuard"));
    CHECK(HasFact(child, "misuse=DestroyedOnOtherThread"));
    CHECK(HasFact(child, "named_exited=1"));
  }

  TEST_CASE("a thread exiting inside a sub-interpreter scope lets End work") {
    ChildResult child = RunScenario("ThreadExitsInsideSubInterpreterRecovered");
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    CHECK(HasFact(child, "end_ok=1"));
    CHECK(HasFact(child, "finalize_ok=1"));
    CHECK(HasFact(child, "misuse=ThreadExitedInsideGuard"));
  }

  TEST_CASE("guards in thread_local destructors work in any order") {
    ChildResult child = RunScenario("GuardsInThreadLocalDestructors");
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    CHECK(HasFact(child, "late_count=8"));
    CHECK(HasFact(child, "late_runs=8"));
    CHECK(HasFact(child, "states_left=0"));
  }
}

}  // namespace
