// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Fork: pyscope::Fork() from the runtime's thread and from another one
// (the child uses Python and sub-interpreters, and finalizes without
// waiting for threads that are not there); a plain fork() by the host while
// other threads are inside guards or waiting for a GIL (the child finalizes
// instead of waiting forever); refusals (live sub-interpreters, inside one,
// while finalizing). Every fork happens inside a scenario (a child process of
// the test), whose own child reports through facts prefixed "child_".

#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <new>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "doctest/doctest.h"
#include "pyscope/pyscope.h"
#include "support/python_helpers.h"
#include "support/scenario.h"
#include "support/sync.h"

namespace {

using pyscope::AllowThreads;
using pyscope::GILGuard;
using pyscope::ScopedRuntime;
using pyscope_test::ChildResult;
using pyscope_test::CodeName;
using pyscope_test::EvalLong;
using pyscope_test::Event;
using pyscope_test::FactOf;
using pyscope_test::HasFact;
using pyscope_test::PrintFact;
using pyscope_test::RunScenario;
using pyscope_test::TestOptions;

// Waits for `pid` up to 30 s (then kills it); prints its exit code as
// `fact`.
void AwaitChild(pid_t pid, const char* fact) {
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (absl::Now() >= give_up) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      PrintFact(fact, "timed out");
      return;
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  PrintFact(fact, WIFEXITED(status)
                      ? std::to_string(WEXITSTATUS(status))
                      : "signal " + std::to_string(WTERMSIG(status)));
}

// In a fork child made by pyscope::Fork(): checks that Python, the gate
// and the runtime work; finalizes; _exits.
[[noreturn]] void ChildOfFork(ScopedRuntime& runtime) {
  bool ok = true;
  {
    GILGuard gil;
    PrintFact("child_threads",
              EvalLong("__import__('threading').active_count()"));
    pyscope::Exec("import os\nchild_value = 6 * 7");
    ok = ok && EvalLong("child_value") == 42;
    ok = ok && EvalLong("hook_ran") == 1;  // os.register_at_fork ran
  }
  {
    // A sub-interpreter works in the child.
    pyscope::SubInterpreter fresh;
    ok = ok && fresh.TryExec("x = 1").ok();
  }
  int exited_listed = 0;
  for (const pyscope::LiveGuard& guard : pyscope::LiveGuards()) {
    if (guard.exited) ++exited_listed;
  }
  PrintFact("child_exited_listed", exited_listed);
  const absl::Time start = absl::Now();
  const absl::Status finalized = runtime.Finalize();
  PrintFact("child_finalize", CodeName(finalized));
  // No drain wait for the parked thread (the deadline is 200 ms).
  PrintFact("child_finalize_waited",
            absl::Now() - start > absl::Milliseconds(150) ? "yes" : "no");
  PrintFact("child_ok", ok ? "yes" : "no");
  std::fflush(stdout);
  _exit(ok && finalized.ok() ? 0 : 1);
}

// Parent-side setup shared by the Fork() scenarios: two native threads
// parked inside guards, a Python thread, a fork hook.
struct Busy {
  Busy() {
    for (std::thread* thread : {&first, &second}) {
      *thread = std::thread([this] {
        GILGuard gil;
        AllowThreads nogil;
        ++inside;
        release.Wait();
      });
    }
    while (inside.load() < 2) absl::SleepFor(absl::Milliseconds(1));
    GILGuard gil;
    pyscope::Exec(
        "import os, threading, time\n"
        "hook_ran = 0\n"
        "def _hook():\n"
        "    global hook_ran\n"
        "    hook_ran += 1\n"
        "os.register_at_fork(after_in_child=_hook)\n"
        "stop = threading.Event()\n"
        "py_thread = threading.Thread(target=stop.wait)\n"
        "py_thread.start()\n");
  }
  ~Busy() {
    release.Set();
    {
      GILGuard gil;
      pyscope::Exec("stop.set()\npy_thread.join()");
    }
    first.join();
    second.join();
  }
  std::atomic<int> inside{0};
  Event release;
  std::thread first, second;
};

PYSCOPE_SCENARIO(ForkFromRuntimeThread) {
  auto runtime = ScopedRuntime::Create(TestOptions());
  if (!runtime.ok()) return 2;
  {
    // Refused while a sub-interpreter is alive; fine once it ended.
    pyscope::SubInterpreter sub;
    absl::StatusOr<pid_t> refused = pyscope::Fork();
    if (refused.ok() && *refused == 0) _exit(9);
    PrintFact("with_sub", CodeName(refused.status()));
  }
  {
    Busy busy;
    absl::StatusOr<pid_t> pid = pyscope::Fork();
    if (!pid.ok()) {
      PrintFact("fork", CodeName(pid.status()));
      return 3;
    }
    if (*pid == 0) ChildOfFork(**runtime);
    AwaitChild(*pid, "child_exit");
    // The parent goes on as before.
    GILGuard gil;
    PrintFact("parent_value", EvalLong("6 * 7"));
  }
  PrintFact("parent_finalize", CodeName((*runtime)->Finalize()));
  return 0;
}

PYSCOPE_SCENARIO(ForkFromOtherThread) {
  auto runtime = ScopedRuntime::Create(TestOptions());
  if (!runtime.ok()) return 2;
  {
    Busy busy;
    std::thread forker([&] {
      absl::StatusOr<pid_t> pid = pyscope::Fork();
      if (!pid.ok()) {
        PrintFact("fork", CodeName(pid.status()));
        return;
      }
      // The child: the runtime's own thread does not exist here; this
      // thread got the runtime and finalizes it.
      if (*pid == 0) ChildOfFork(**runtime);
      AwaitChild(*pid, "child_exit");
    });
    forker.join();
  }
  PrintFact("parent_finalize", CodeName((*runtime)->Finalize()));
  return 0;
}

// A plain fork() while another native thread is inside a guard (parked in
// AllowThreads) and, from 3.12, while a thread holds an own-GIL
// sub-interpreter's GIL and another waits to attach to it. The forking
// thread holds the main GIL, so CPython's main interpreter is consistent
// in the child; pyscope must not wait for the absent threads.
PYSCOPE_SCENARIO(RawForkWithThreadsInsideAndAttaching) {
  auto runtime = ScopedRuntime::Create(TestOptions());
  if (!runtime.ok()) return 2;
  Event inside;
  Event release;
  std::thread parked([&] {
    GILGuard gil;
    AllowThreads nogil;
    inside.Set();
    release.Wait();
  });
  inside.Wait();
  std::unique_ptr<pyscope::SubInterpreter> own;
  std::thread holder;
  std::thread attaching;
  std::atomic<bool> holding{false};
  std::atomic<bool> waiting{false};
  if (pyscope::detail::compat::kHasPerInterpreterGil) {
    own = std::make_unique<pyscope::SubInterpreter>(
        pyscope::SubInterpreterOptions::Isolated());
    holder = std::thread([&] {
      GILGuard gil(*own);
      holding = true;
      release.Wait();  // holds the sub-interpreter's GIL meanwhile
    });
    pyscope_test::WaitFor(holding);
    attaching = std::thread([&] {
      waiting = true;
      GILGuard blocked(*own);  // waits for that GIL
    });
    pyscope_test::WaitFor(waiting);
    absl::SleepFor(absl::Milliseconds(50));  // let it block in the attach
  }
  pid_t pid = -1;
  {
    GILGuard gil;
    pyscope::Exec("before_fork = 1");
    pid = ::fork();  // the host's own fork, not pyscope::Fork()
    if (pid == 0) {
      pyscope::Exec("in_child = before_fork + 1");
      PrintFact("child_value", EvalLong("in_child"));
    }
  }
  if (pid == 0) {
    {
      GILGuard again;  // released and taken again: nobody else wants it
      pyscope::Exec("in_child += 1");
    }
    if (own != nullptr) {
      GILGuard refused(*own, std::nothrow);
      PrintFact("child_enter_own", CodeName(refused.status()));
    }
    const absl::Time start = absl::Now();
    const absl::Status finalized = (*runtime)->Finalize();
    PrintFact("child_finalize", CodeName(finalized));
    // No drain wait for the parked thread (the deadline is 200 ms).
    PrintFact("child_finalize_waited",
              absl::Now() - start > absl::Milliseconds(150) ? "yes" : "no");
    std::fflush(stdout);
    _exit(0);
  }
  AwaitChild(pid, "child_exit");
  release.Set();
  parked.join();
  if (own != nullptr) {
    holder.join();
    attaching.join();
    own.reset();
  }
  PrintFact("parent_finalize", CodeName((*runtime)->Finalize()));
  return 0;
}

PYSCOPE_SCENARIO(ForkRefusals) {
  {
    // Without a runtime: a plain fork.
    absl::StatusOr<pid_t> pid = pyscope::Fork();
    if (pid.ok() && *pid == 0) _exit(7);
    if (pid.ok()) AwaitChild(*pid, "plain_child_exit");
  }
  auto runtime = ScopedRuntime::Create(TestOptions());
  if (!runtime.ok()) return 2;
  pyscope::SubInterpreter sub;
  {
    GILGuard gil(sub);
    absl::StatusOr<pid_t> pid = pyscope::Fork();
    if (pid.ok() && *pid == 0) _exit(9);
    PrintFact("from_sub", CodeName(pid.status()));
  }
  absl::Status in_callback;
  (*runtime)->AddExitCallback([&] {
    absl::StatusOr<pid_t> pid = pyscope::Fork();
    if (pid.ok() && *pid == 0) _exit(9);
    in_callback = pid.status();
  });
  PrintFact("finalize", CodeName((*runtime)->Finalize()));
  PrintFact("while_finalizing", CodeName(in_callback));
  return 0;
}

void CheckForkChild(const ChildResult& child) {
  CHECK(FactOf(child, "child_exit") == "0");
  CHECK(HasFact(child, "child_ok=yes"));
  CHECK(HasFact(child, "child_threads=1"));
  CHECK(HasFact(child, "child_finalize=OK"));
  CHECK(HasFact(child, "child_finalize_waited=no"));
  // The two parked native threads.
  CHECK(FactOf(child, "child_exited_listed") == "2");
  CHECK(HasFact(child, "parent_finalize=OK"));
}

TEST_SUITE("fork") {
  TEST_CASE("pyscope::Fork from the runtime's thread") {
    ChildResult child = RunScenario("ForkFromRuntimeThread", absl::Seconds(60));
    REQUIRE_MESSAGE(child.ExitedWith(0), child.Describe());
    CheckForkChild(child);
    CHECK(HasFact(child, "parent_value=42"));
    CHECK(HasFact(child, "with_sub=FAILED_PRECONDITION"));
  }

  TEST_CASE("pyscope::Fork from another thread: the child gets the runtime") {
    ChildResult child = RunScenario("ForkFromOtherThread", absl::Seconds(60));
    REQUIRE_MESSAGE(child.ExitedWith(0), child.Describe());
    if (pyscope::detail::compat::kFinalizeResumesInitialThreadState) {
      // 3.13+: refused, the child could never finalize.
      CHECK(HasFact(child, "fork=FAILED_PRECONDITION"));
      CHECK(HasFact(child, "parent_finalize=OK"));
    } else {
      CheckForkChild(child);
    }
  }

  TEST_CASE("a host's raw fork: the child never waits for absent threads") {
    ChildResult child =
        RunScenario("RawForkWithThreadsInsideAndAttaching", absl::Seconds(60));
    REQUIRE_MESSAGE(child.ExitedWith(0), child.Describe());
    CHECK(HasFact(child, "child_value=2"));
    CHECK(FactOf(child, "child_exit") == "0");
    if (pyscope::detail::compat::kHasPerInterpreterGil) {
      // The sub-interpreter whose GIL an absent thread held is refused, and
      // finalization leaves Python initialized rather than wait for it.
      CHECK(HasFact(child, "child_enter_own=FAILED_PRECONDITION"));
      CHECK(HasFact(child, "child_finalize=UNAVAILABLE"));
    } else {
      CHECK(HasFact(child, "child_finalize=OK"));
      CHECK(HasFact(child, "child_finalize_waited=no"));
    }
    CHECK(HasFact(child, "parent_finalize=OK"));
  }

  TEST_CASE("refusals: from a sub-interpreter, while finalizing") {
    ChildResult child = RunScenario("ForkRefusals");
    REQUIRE_MESSAGE(child.ExitedWith(0), child.Describe());
    CHECK(FactOf(child, "plain_child_exit") == "7");
    CHECK(HasFact(child, "from_sub=FAILED_PRECONDITION"));
    CHECK(HasFact(child, "while_finalizing=UNAVAILABLE"));
    CHECK(HasFact(child, "finalize=OK"));
  }
}

}  // namespace
