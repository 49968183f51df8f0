// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Commits one run-time misuse, named on the command line, so that
// misuse_test.cc can check that pyscope reports it and aborts.
//
// Before the misuse, prints what the report must name:
//   site=<file>:<line>        where the guard (or runtime) involved was created
//   thread=<id> ("<name>")    the thread on which the misuse is detected

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <thread>

#include "pyscope/pyscope.h"

namespace {

using pyscope::AllowThreads;
using pyscope::GILGuard;
using pyscope::ScopedRuntime;
using pyscope::SourceLocation;
using pyscope::ThreadStateSwap;

// Names the calling thread and prints the line the report must contain.
void AnnounceThread(const char* name) {
  pthread_setname_np(pthread_self(), name);
  std::printf("thread=%ld (\"%s\")\n", static_cast<long>(syscall(SYS_gettid)),
              name);
}

void AnnounceSite(int line) { std::printf("site=%s:%d\n", __FILE__, line); }

// Prints the id of the thread that created the guard (or runtime) when the
// misuse is detected on another one.
void AnnounceCreator() {
  std::printf("creator=%ld\n", static_cast<long>(syscall(SYS_gettid)));
}

// std::optional constructs its value inside <optional>, so the guard's
// default SourceLocation would name the library header; pass our own.
#define HERE SourceLocation::Current(__FILE__, __LINE__, __func__)

int DestroyedOnOtherThread() {
  ScopedRuntime runtime;
  AnnounceCreator();
  std::optional<GILGuard> guard;
  AnnounceSite(__LINE__ + 1);
  guard.emplace(HERE);
  pyscope::Exec("x = 1");
  // Hand the guard to another thread, which destroys it.
  std::thread other([&guard] {
    AnnounceThread("other-thread");
    guard.reset();
  });
  other.join();
  return 0;
}

int DestroyedOutOfOrder() {
  ScopedRuntime runtime;
  AnnounceThread("main-thread");
  std::optional<GILGuard> outer;
  std::optional<GILGuard> inner;
  AnnounceSite(__LINE__ + 1);
  outer.emplace(HERE);
  inner.emplace(HERE);
  outer.reset();  // before inner: not LIFO
  return 0;
}

int AllowThreadsWithoutGil() {
  ScopedRuntime runtime;
  AnnounceThread("main-thread");
  AnnounceSite(__LINE__ + 1);
  AllowThreads nogil;
  return 0;
}

int FinalizeOnOtherThread() {
  AnnounceCreator();
  AnnounceSite(__LINE__ + 1);
  ScopedRuntime runtime;
  std::thread other([&runtime] {
    AnnounceThread("finalizer");
    (void)runtime.Finalize();
  });
  other.join();
  return 0;
}

int FinalizeWhileAttached() {
  AnnounceThread("main-thread");
  AnnounceSite(__LINE__ + 1);
  ScopedRuntime runtime;
  GILGuard gil;
  (void)runtime.Finalize();
  return 0;
}

// Finalizing while a raw PyGILState_Ensure holds the thread attached.
int FinalizeWhileRawAttached() {
  AnnounceThread("main-thread");
  AnnounceSite(__LINE__ + 1);
  ScopedRuntime runtime;
  PyGILState_STATE state = PyGILState_Ensure();
  (void)runtime.Finalize();
  PyGILState_Release(state);
  return 0;
}

// Finalize() called again from one of the runtime's exit callbacks.
int FinalizeReentered() {
  AnnounceThread("main-thread");
  AnnounceSite(__LINE__ + 1);
  ScopedRuntime runtime;
  runtime.AddExitCallback([&runtime] { (void)runtime.Finalize(); });
  (void)runtime.Finalize();
  return 0;
}

// A thread that exits while its guard (kept in a heap object) is live.
int ThreadExitedInsideGuard() {
  ScopedRuntime runtime;
  auto* leaked = new std::optional<GILGuard>;
  std::thread worker([leaked] {
    AnnounceThread("exiting-thread");
    AnnounceSite(__LINE__ + 1);
    leaked->emplace(HERE);
  });
  worker.join();
  return 0;
}

int SwapTargetLost() {
  ScopedRuntime runtime;
  AnnounceThread("main-thread");
  GILGuard gil;
  PyThreadState* mine = PyThreadState_New(PyInterpreterState_Main());
  {
    AnnounceSite(__LINE__ + 1);
    ThreadStateSwap swap(mine);
    // Deletes the swapped-in state (and releases the GIL) inside the scope.
    PyThreadState_Clear(mine);
    PyThreadState_DeleteCurrent();
  }
  return 0;
}

int SwapWithoutGil() {
  ScopedRuntime runtime;
  AnnounceThread("main-thread");
  PyThreadState* mine = PyThreadState_New(PyInterpreterState_Main());
  AnnounceSite(__LINE__ + 1);
  ThreadStateSwap swap(mine);
  return 0;
}

int SecondRuntime() {
  ScopedRuntime first;
  AnnounceThread("main-thread");
  AnnounceSite(__LINE__ + 1);
  ScopedRuntime second;
  return 0;
}

void PrintingHandler(const pyscope::MisuseReport& report) {
  std::printf("handled=%s %s line %d\n", pyscope::MisuseName(report.misuse),
              report.guard, report.created_at.line());
}

// A replaced handler that returns: the process goes on.
int CustomHandler() {
  pyscope::SetMisuseHandler(&PrintingHandler);
  ScopedRuntime runtime;
  AnnounceThread("main-thread");
  AnnounceSite(__LINE__ + 1);
  { AllowThreads nogil; }
  GILGuard gil;
  pyscope::Exec("alive = True");
  std::printf("continued=1\n");
  return 0;
}

struct Scenario {
  const char* name;
  int (*run)();
};

constexpr Scenario kScenarios[] = {
    {"DestroyedOnOtherThread", &DestroyedOnOtherThread},
    {"DestroyedOutOfOrder", &DestroyedOutOfOrder},
    {"AllowThreadsWithoutGil", &AllowThreadsWithoutGil},
    {"FinalizeOnOtherThread", &FinalizeOnOtherThread},
    {"FinalizeWhileAttached", &FinalizeWhileAttached},
    {"FinalizeWhileRawAttached", &FinalizeWhileRawAttached},
    {"FinalizeReentered", &FinalizeReentered},
    {"ThreadExitedInsideGuard", &ThreadExitedInsideGuard},
    {"SwapTargetLost", &SwapTargetLost},
    {"SwapWithoutGil", &SwapWithoutGil},
    {"SecondRuntime", &SecondRuntime},
    {"CustomHandler", &CustomHandler},
};

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IONBF, 0);
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <misuse>\n", argv[0]);
    return 2;
  }
  for (const Scenario& scenario : kScenarios) {
    if (std::strcmp(argv[1], scenario.name) == 0) return scenario.run();
  }
  std::fprintf(stderr, "unknown misuse \"%s\"\n", argv[1]);
  return 2;
}
