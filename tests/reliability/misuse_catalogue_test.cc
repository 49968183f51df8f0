// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// The rows of docs/misuse.md that no other suite proves: each misuse runs
// in a child process with a timeout, and the test asserts its defined
// outcome (a status, a diagnostic, or the process going on), never a hang,
// a segfault or a CPython fatal error.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <memory>
#include <new>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
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
using pyscope::SubInterpreter;
using pyscope_test::ChildResult;
using pyscope_test::CodeName;
using pyscope_test::Event;
using pyscope_test::FactOf;
using pyscope_test::HasFact;
using pyscope_test::PrintFact;
using pyscope_test::RunScenario;
using pyscope_test::TestOptions;

// The SubInterpreter object destroyed while another thread is inside it:
// the destructor ends it, which waits for that scope (up to end_deadline).
PYSCOPE_SCENARIO(SubInterpreterDestroyedWhileInside) {
  ScopedRuntime runtime(TestOptions());
  Event inside, leave;
  std::atomic<long> value{0};
  auto sub = std::make_unique<SubInterpreter>();
  std::thread worker([&] {
    GILGuard gil(*sub);
    pyscope::Exec("x = 41");
    inside.Set();
    {
      AllowThreads nogil;
      absl::SleepFor(absl::Milliseconds(200));
    }
    value = pyscope_test::EvalLong("x + 1");
  });
  inside.Wait();
  sub.reset();  // waits for the worker's scope, then ends
  worker.join();
  PrintFact("value", value.load());
  PrintFact("destroyed", 1L);
  return 0;
}

// A raw Py_FinalizeEx behind pyscope's back (a raw PyGILState_Ensure on
// the main thread) while another thread is inside a guard: afterwards
// guards are refused, the thread inside leaves AllowThreads ended by
// unwinding, Finalize reports it, and a new runtime starts.
PYSCOPE_SCENARIO(RawFinalizeBehindTheBack) {
  ScopedRuntime runtime(TestOptions());
  std::thread warm([] {
    GILGuard gil;
    pyscope::Exec("y = 1");
  });
  warm.join();
  // Another thread is inside a guard, in AllowThreads, meanwhile.
  Event parked;
  std::atomic<bool> came_back{false};
  std::thread inside([&] {
    GILGuard gil;
    {
      AllowThreads nogil;
      parked.Set();
      absl::SleepFor(absl::Milliseconds(300));
    }
    came_back = true;
  });
  parked.Wait();
  PyGILState_STATE state = PyGILState_Ensure();
  (void)state;
  const int rc = Py_FinalizeEx();
  PrintFact("raw_rc", static_cast<long>(rc));
  std::thread later([] {
    GILGuard gil(std::nothrow);
    PrintFact("later_code", CodeName(gil.status()));
  });
  later.join();
  inside.join();
  PrintFact("inside_came_back", came_back.load() ? 1L : 0L);
  {
    GILGuard gil(std::nothrow);
    PrintFact("main_code", CodeName(gil.status()));
  }
  const absl::Status finalized = runtime.Finalize();
  PrintFact("finalize_code", CodeName(finalized));
  PrintFact("finalize_message", std::string(finalized.message()));
  {
    ScopedRuntime next(TestOptions());
    GILGuard gil;
    PrintFact("next_runtime_works", pyscope_test::EvalLong("6 * 7"));
  }
  return 0;
}

// A guard taken in a signal handler, on a thread that is not inside pyscope
// when the signal arrives.
std::atomic<long> handler_value{0};
// Like any handler that calls into a library, it keeps errno as it found it.
void GuardedHandler(int) {
  const int saved_errno = errno;
  {
    GILGuard gil(std::nothrow);
    if (gil.ok()) handler_value = pyscope_test::EvalLong("6 * 7");
  }
  errno = saved_errno;
}

PYSCOPE_SCENARIO(GuardInSignalHandler) {
  ScopedRuntime runtime(TestOptions());
  struct sigaction action = {};
  action.sa_handler = &GuardedHandler;
  sigemptyset(&action.sa_mask);
  sigaction(SIGUSR1, &action, nullptr);
  std::atomic<bool> done{false};
  std::thread worker([&] {
    while (!done.load()) absl::SleepFor(absl::Milliseconds(1));
  });
  absl::SleepFor(absl::Milliseconds(20));
  pthread_kill(worker.native_handle(), SIGUSR1);
  while (handler_value.load() == 0) absl::SleepFor(absl::Milliseconds(1));
  done = true;
  worker.join();
  PrintFact("handler_value", handler_value.load());
  return 0;
}

// A runtime held in a static object, destroyed after main returns (with a
// native thread that used it still alive and idle).
ScopedRuntime* StaticRuntime() {
  static ScopedRuntime runtime(TestOptions());
  return &runtime;
}

PYSCOPE_SCENARIO(StaticRuntimeAfterMain) {
  StaticRuntime();
  // Never destroyed: the thread waits on it while exit() runs.
  static Event* const stop = new Event;
  static Event* const ran = new Event;
  static std::thread idle([] {
    {
      GILGuard gil;
      pyscope::Exec("z = 1");
    }
    ran->Set();
    stop->Wait();
  });
  idle.detach();
  ran->Wait();
  {
    GILGuard gil;
    PrintFact("z", pyscope_test::EvalLong("z + 1"));
  }
  std::atexit([] { std::printf("exit_handlers_ran=1\n"); });
  return 0;  // the static runtime finalizes during exit()
}

// ScopedRuntime::Create inside an exit callback: a second live runtime.
PYSCOPE_SCENARIO(RuntimeInExitCallback) {
  pyscope_test::RecordingMisuseHandler recording;
  ScopedRuntime runtime(TestOptions());
  static std::string inner;
  runtime.AddExitCallback([] {
    auto nested = ScopedRuntime::Create(TestOptions());
    inner = CodeName(nested.status());
  });
  const absl::Status finalized = runtime.Finalize();
  PrintFact("inner_code", inner);
  PrintFact("outer_code", CodeName(finalized));
  for (const auto& report : recording.reports()) {
    PrintFact("misuse", pyscope::MisuseName(report.misuse));
  }
  auto after = ScopedRuntime::Create(TestOptions());
  PrintFact("after_code", CodeName(after.status()));
  return 0;
}

// fork() in a multithreaded host: a child that only calls _exit is fine,
// and the parent's runtime is undisturbed.
PYSCOPE_SCENARIO(ForkChildExitsAtOnce) {
  ScopedRuntime runtime(TestOptions());
  std::atomic<bool> stop{false};
  std::thread busy([&] {
    while (!stop.load()) {
      GILGuard gil;
      pyscope::Exec("w = 1");
    }
  });
  absl::SleepFor(absl::Milliseconds(20));
  const pid_t pid = fork();
  if (pid == 0) _exit(7);
  int status = 0;
  waitpid(pid, &status, 0);
  stop = true;
  busy.join();
  PrintFact("child_exit",
            WIFEXITED(status) ? static_cast<long>(WEXITSTATUS(status)) : -1L);
  {
    GILGuard gil;
    PrintFact("parent_works", pyscope_test::EvalLong("w + 1"));
  }
  PrintFact("finalize_code", CodeName(runtime.Finalize()));
  return 0;
}

ChildResult Run(const char* scenario) {
  ChildResult child = RunScenario(scenario, absl::Seconds(30));
  INFO(child.Describe());
  CHECK(!child.timed_out);
  CHECK(child.ExitedWith(0));
  return child;
}

TEST_SUITE("misuse_catalogue") {
  TEST_CASE("the SubInterpreter destroyed while a thread is inside it") {
    const ChildResult child = Run("SubInterpreterDestroyedWhileInside");
    CHECK(HasFact(child, "value=42"));
    CHECK(HasFact(child, "destroyed=1"));
  }

  TEST_CASE("raw Py_FinalizeEx behind pyscope's back") {
    const ChildResult child = Run("RawFinalizeBehindTheBack");
    INFO(child.Describe());
    CHECK(HasFact(child, "raw_rc=0"));
    CHECK(HasFact(child, "later_code=UNAVAILABLE"));
    CHECK(HasFact(child, "main_code=UNAVAILABLE"));
    CHECK(HasFact(child, "inside_came_back=0"));  // ended by unwinding
    CHECK(HasFact(child, "finalize_code=FAILED_PRECONDITION"));
    CHECK(HasFact(child, "next_runtime_works=42"));
    CHECK(FactOf(child, "finalize_message").find("Py_FinalizeEx") !=
          std::string::npos);
  }

  TEST_CASE("a guard taken in a signal handler on an idle thread") {
    const ChildResult child = Run("GuardInSignalHandler");
    CHECK(HasFact(child, "handler_value=42"));
  }

  TEST_CASE("a runtime in a static object, finalized after main returns") {
    const ChildResult child = Run("StaticRuntimeAfterMain");
    CHECK(HasFact(child, "z=2"));
    CHECK(HasFact(child, "exit_handlers_ran=1"));
    CHECK(child.err.find("pyscope") == std::string::npos);
  }

  TEST_CASE("a runtime constructed inside an exit callback") {
    const ChildResult child = Run("RuntimeInExitCallback");
    CHECK(HasFact(child, "inner_code=ALREADY_EXISTS"));
    CHECK(HasFact(child, "misuse=SecondRuntime"));
    CHECK(HasFact(child, "outer_code=OK"));
    CHECK(HasFact(child, "after_code=OK"));
  }

  TEST_CASE("fork in a multithreaded host; the child only calls _exit") {
    const ChildResult child = Run("ForkChildExitsAtOnce");
    CHECK(HasFact(child, "child_exit=7"));
    CHECK(HasFact(child, "parent_works=2"));
    CHECK(HasFact(child, "finalize_code=OK"));
  }
}

}  // namespace
