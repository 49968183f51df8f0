// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Interrupts: KeyboardInterrupt forwarded into the main thread
// (InterruptMainThread) and into one scope on any thread (InterruptToken).
// Each main-thread case runs in a child process: the test runner's main
// thread is not the one the scenario interrupts, and a failure would hang
// in time.sleep(60).

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <string>
#include <thread>

#include "absl/time/clock.h"
#include "doctest/doctest.h"
#include "pyscope/pyscope.h"
#include "support/python_helpers.h"
#include "support/scenario.h"
#include "support/sync.h"

namespace {

using pyscope::GILGuard;
using pyscope::InterruptScope;
using pyscope::InterruptToken;
using pyscope::RuntimeOptions;
using pyscope::ScopedRuntime;
using pyscope_test::FactOf;
using pyscope_test::PrintFact;
using pyscope_test::RunScenario;
using pyscope_test::TestOptions;

std::atomic<bool> about_to_run{false};

// The host's own SIGINT handler: forwards Ctrl-C into Python.
void HostSigint(int) { pyscope::InterruptMainThread(); }

void InstallHostSigint() {
  struct sigaction action = {};
  action.sa_handler = &HostSigint;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;  // no SA_RESTART: the main thread's sleep returns
  sigaction(SIGINT, &action, nullptr);
}

// Runs `code` on the main thread while another thread interrupts it the way
// `interrupt` says, and prints what the code raised.
int RunInterrupted(const RuntimeOptions& options, const char* code,
                   bool by_signal) {
  if (by_signal) InstallHostSigint();
  ScopedRuntime runtime(options);
  PrintFact("signal_set_up", pyscope::InterruptSignal() != 0 ? 1L : 0L);
  const pthread_t main_thread = pthread_self();
  std::thread interrupter([&] {
    pyscope_test::WaitFor(about_to_run);
    // Keep interrupting until the code is in its loop or sleep (an earlier
    // interrupt is raised as soon as it runs anyway).
    absl::SleepFor(absl::Milliseconds(100));
    if (by_signal) {
      pthread_kill(main_thread, SIGINT);  // Ctrl-C, delivered to main
    } else {
      pyscope::InterruptMainThread();
    }
  });
  absl::Status status;
  {
    GILGuard gil;
    about_to_run = true;
    status = pyscope::TryExec(code);
  }
  interrupter.join();
  PrintFact("raised", std::string(status.message().substr(
                          0, status.message().find(':'))));
  GILGuard gil;
  PrintFact("still_works", pyscope::TryExec("x = 1").ok() ? 1L : 0L);
  return 0;
}

PYSCOPE_SCENARIO(InterruptBusyLoop) {
  return RunInterrupted(TestOptions(), "while True: pass", false);
}

PYSCOPE_SCENARIO(InterruptSleepBySignal) {
  return RunInterrupted(TestOptions(), "import time\ntime.sleep(60)", true);
}

PYSCOPE_SCENARIO(InterruptWithPythonHandlers) {
  RuntimeOptions options = TestOptions();
  options.install_signal_handlers = true;
  return RunInterrupted(options, "while True: pass", false);
}

PYSCOPE_SCENARIO(InterruptCallsPythonSigintHandler) {
  ScopedRuntime runtime(TestOptions());
  std::thread interrupter([] {
    pyscope_test::WaitFor(about_to_run);
    absl::SleepFor(absl::Milliseconds(100));
    pyscope::InterruptMainThread();
  });
  GILGuard gil;
  pyscope::Exec(
      "import signal\n"
      "class Stop(Exception): pass\n"
      "def on_sigint(signum, frame): raise Stop(signum)\n"
      "signal.signal(signal.SIGINT, on_sigint)");
  about_to_run = true;
  absl::Status status = pyscope::TryExec("while True: pass");
  interrupter.join();
  PrintFact("raised", std::string(status.message().substr(
                          0, status.message().find('\n'))));
  return 0;
}

PYSCOPE_SCENARIO(InterruptKeepsDispositions) {
  struct sigaction before;
  ScopedRuntime runtime(TestOptions());
  const int signum = pyscope::InterruptSignal();
  sigaction(signum, nullptr, &before);
  PrintFact("default", before.sa_handler == SIG_DFL ? 1L : 0L);
  return 0;
}

TEST_SUITE("interrupt") {
  TEST_CASE("InterruptMainThread stops a busy loop on the main thread") {
    auto child = RunScenario("InterruptBusyLoop");
    REQUIRE_MESSAGE(child.ExitedWith(0), child.Describe());
    CHECK(FactOf(child, "signal_set_up") == "1");
    CHECK(FactOf(child, "raised") == "KeyboardInterrupt");
    CHECK(FactOf(child, "still_works") == "1");
  }

  TEST_CASE("a host's SIGINT handler forwarding Ctrl-C stops time.sleep(60)") {
    auto child = RunScenario("InterruptSleepBySignal");
    REQUIRE_MESSAGE(child.ExitedWith(0), child.Describe());
    CHECK(FactOf(child, "raised") == "KeyboardInterrupt");
    CHECK(FactOf(child, "still_works") == "1");
  }

  TEST_CASE("with Python's own handlers installed it works the same") {
    auto child = RunScenario("InterruptWithPythonHandlers");
    REQUIRE_MESSAGE(child.ExitedWith(0), child.Describe());
    CHECK(FactOf(child, "raised") == "KeyboardInterrupt");
  }

  TEST_CASE("a SIGINT handler Python code installed is called instead") {
    auto child = RunScenario("InterruptCallsPythonSigintHandler");
    REQUIRE_MESSAGE(child.ExitedWith(0), child.Describe());
    CHECK(FactOf(child, "raised") ==
          "__main__.Stop: " + std::to_string(static_cast<int>(SIGINT)));
  }

  TEST_CASE("the interrupt signal keeps its default disposition") {
    auto child = RunScenario("InterruptKeepsDispositions");
    REQUIRE_MESSAGE(child.ExitedWith(0), child.Describe());
    CHECK(FactOf(child, "default") == "1");
  }

  TEST_CASE("without a running runtime InterruptMainThread does nothing") {
    CHECK_FALSE(pyscope::InterruptMainThread());
    { ScopedRuntime runtime(TestOptions()); }
    CHECK_FALSE(pyscope::InterruptMainThread());
  }

  TEST_CASE("InterruptToken stops a busy loop on a worker thread") {
    ScopedRuntime runtime(TestOptions());
    InterruptToken token;
    CHECK(token.Interrupt().code() == absl::StatusCode::kFailedPrecondition);
    {
      GILGuard gil;
      pyscope::Exec("import threading\nstarted = threading.Event()");
    }
    absl::Status result;
    bool scope_ok = false;
    std::thread worker([&] {
      GILGuard gil;
      InterruptScope scope(token);
      scope_ok = scope.ok();
      result = pyscope::TryExec(
          "try:\n  started.set()\n  while True: pass\n"
          "finally:\n  cleaned_up = True");
    });
    {
      GILGuard gil;
      pyscope::Exec("assert started.wait(10)");
    }
    CHECK(token.Interrupt().ok());
    worker.join();
    CHECK(scope_ok);
    CHECK(result.message().find("KeyboardInterrupt") == 0);
    GILGuard gil;
    CHECK(pyscope_test::EvalBool("cleaned_up"));
    CHECK_FALSE(token.active());
  }

  TEST_CASE("InterruptToken reaches code in a sub-interpreter") {
    ScopedRuntime runtime(TestOptions());
    for (const auto& created : pyscope_test::CreatableOptions()) {
      const char* name = created.first;
      const pyscope::SubInterpreterOptions& options = created.second;
      CAPTURE(name);
      pyscope::SubInterpreter sub(options);
      InterruptToken token;
      std::atomic<bool> inside{false};
      absl::Status result;
      std::thread worker([&] {
        GILGuard gil(sub);
        InterruptScope scope(token);
        inside = true;
        result = pyscope::TryExec("while True: pass");
      });
      REQUIRE(pyscope_test::WaitFor(inside));
      REQUIRE(token.Interrupt().ok());
      worker.join();
      CHECK(result.message().find("KeyboardInterrupt") == 0);
    }
  }

  TEST_CASE("an interrupt pending when the scope ends is cancelled") {
    ScopedRuntime runtime(TestOptions());
    InterruptToken token;
    GILGuard gil;
    {
      InterruptScope scope(token);
      REQUIRE(token.Interrupt().ok());  // from this thread: not yet raised
      // A second scope for the same token is refused.
      InterruptScope second(token);
      CHECK(second.status().code() == absl::StatusCode::kAlreadyExists);
    }
    CHECK(pyscope::TryExec("for i in range(1000): pass").ok());
  }
}

}  // namespace
