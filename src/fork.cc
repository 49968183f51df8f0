// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Fork (pyscope/fork.h), and the pthread_atfork handlers that keep
// pyscope's own state valid across any fork(): every core lock is taken
// before the fork (so the child never inherits one held by a thread that
// does not exist there) and released after it; in the child the records,
// gate slots and interpreter memberships of the vanished threads are
// dropped.

#include "pyscope/fork.h"

#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "extras.h"
#include "gate.h"
#include "interpreter_registry.h"
#include "pyscope/gil.h"
#include "thread_state_cache.h"

namespace pyscope {
namespace detail {
namespace {

// How long a fork waits for a pyscope lock: they are held for a few
// instructions, except by a thread blocked inside a CPython call that
// re-enters Python (a __del__ while a sub-interpreter ends); after that the
// fork goes on and the child renews the lock.
constexpr int kForkPatienceMs = 2000;

// What the prepare handler took. Only the forking thread touches it (fork
// handlers run on it; concurrent forks are serialized by taking the locks).
struct ForkLocks {
  bool runtime = false;
  bool calls = false;
  bool deadlines = false;
  bool cache = false;
  bool registry = false;
  bool gate = false;
};
ForkLocks fork_locks;

// Lock order: the leaves first, then the core's own order (the cache and
// its records, the registry and its control blocks), then the gate.
void PrepareFork() {
  fork_locks.runtime = LockRuntimeForFork(kForkPatienceMs);
  fork_locks.calls = LockMainThreadCallsForFork(kForkPatienceMs);
  fork_locks.deadlines = LockDeadlinesForFork(kForkPatienceMs);
  fork_locks.cache = ThreadStateCache::Get().LockForFork(kForkPatienceMs);
  fork_locks.registry = InterpreterRegistry::Get().LockForFork(kForkPatienceMs);
  fork_locks.gate = Gate::Get().LockForFork(kForkPatienceMs);
}

void ReleaseForkLocks(bool in_child) {
  Gate::Get().UnlockAfterFork(fork_locks.gate, in_child);
  InterpreterRegistry::Get().UnlockAfterFork(in_child);
  ThreadStateCache::Get().UnlockAfterFork(in_child);
  UnlockDeadlinesAfterFork(fork_locks.deadlines, in_child);
  UnlockMainThreadCallsAfterFork(fork_locks.calls, in_child);
  UnlockRuntimeAfterFork(fork_locks.runtime, in_child);
}

void AfterForkInParent() { ReleaseForkLocks(/*in_child=*/false); }

void AfterForkInChild() {
  const ForkLocks took = fork_locks;
  ReleaseForkLocks(/*in_child=*/true);
  if (!(took.runtime && took.calls && took.deadlines && took.cache &&
        took.registry && took.gate)) {
    std::fprintf(stderr,
                 "pyscope: fork() happened while another thread held one of "
                 "pyscope's locks for more than %d ms; in the child that lock "
                 "was renewed, and what it protected may be inconsistent.\n",
                 kForkPatienceMs);
  }
  Gate& gate = Gate::Get();
  if (gate.state() == Gate::State::kUninitialized) return;
  // Only this thread exists now.
  Record& survivor = ThisRecord();
  gate.ForgetOtherThreadsAfterFork(survivor.slot);
  InterpreterRegistry::Get().ForgetOtherThreadsAfterFork(&survivor);
  ThreadStateCache::Get().RetireOtherThreadsAfterFork(survivor);
  ForgetDeadlinesAfterFork();
  ForgetMainThreadCallsAfterFork();
  // The runtime's thread may be gone: hand the runtime to this one if it
  // has a main-interpreter state (Fork() hands it over in any case, after
  // PyOS_AfterFork_Child).
  if (survivor.main_generation == gate.generation()) {
    HandRuntimeToForkChild(survivor, survivor.main_tstate);
  }
}

// Registered when libpyscope is loaded, so that a host's own fork() is
// covered too.
const bool fork_handlers_registered = [] {
  return pthread_atfork(&PrepareFork, &AfterForkInParent, &AfterForkInChild) ==
         0;
}();

absl::Status ErrnoStatus(int error) {
  const std::string what = absl::StrCat("pyscope: fork() failed: errno ", error,
                                        " (", strerror(error), ")");
  return error == EAGAIN || error == ENOMEM ? absl::ResourceExhaustedError(what)
                                            : absl::InternalError(what);
}

}  // namespace
}  // namespace detail

absl::StatusOr<pid_t> Fork(SourceLocation where)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {  // PyOS_* need the GIL the guard holds
  (void)detail::fork_handlers_registered;
  detail::Gate& gate = detail::Gate::Get();
  const detail::Gate::State state = gate.state();
  if (state == detail::Gate::State::kUninitialized ||
      state == detail::Gate::State::kFinalized) {
    const pid_t pid = ::fork();
    if (pid < 0) return detail::ErrnoStatus(errno);
    return pid;
  }
  if (state != detail::Gate::State::kRunning) {
    return absl::UnavailableError(
        "pyscope::Fork: the runtime is being finalized");
  }
  GILGuard gil(std::nothrow, where);
  if (!gil.ok()) return gil.status();
  PyThreadState* tstate = PyThreadState_Get();
  if (PyThreadState_GetInterpreter(tstate) != PyInterpreterState_Main()) {
    return absl::FailedPreconditionError(
        "pyscope::Fork called on a thread attached to a sub-interpreter: "
        "CPython forks only from the main interpreter (the child keeps only "
        "that one). Leave the sub-interpreter's scope first.");
  }
  // CPython cannot fork a process that has sub-interpreters: in the child,
  // PyOS_AfterFork_Child deadlocks deleting them on 3.9-3.12 (it takes the
  // runtime's HEAD_LOCK twice) and is a fatal error on 3.13 (checked with
  // CPython's own C API on each version). Refused before anything happens.
  if (PyInterpreterState_Next(PyInterpreterState_Head()) != nullptr) {
    return absl::FailedPreconditionError(
        "pyscope::Fork: sub-interpreters are alive; CPython's "
        "PyOS_AfterFork_Child hangs (3.9-3.12) or aborts (3.13) deleting them "
        "in the child. End every SubInterpreter before forking, or fork "
        "before creating them.");
  }
  detail::Record& self = detail::ThisRecord();
  if (detail::compat::kFinalizeResumesInitialThreadState &&
      !detail::IsRuntimeThread(self)) {
    return absl::FailedPreconditionError(
        "pyscope::Fork: from CPython 3.13 the child of a fork from a thread "
        "other than the runtime's could never finalize Python "
        "(Py_FinalizeEx resumes the initial thread state, which "
        "PyOS_AfterFork_Child deletes in such a child). Fork from the thread "
        "that created the ScopedRuntime.");
  }
  PyOS_BeforeFork();
  const pid_t pid = ::fork();
  if (pid != 0) {
    const int error = errno;
    PyOS_AfterFork_Parent();
    if (pid < 0) return detail::ErrnoStatus(error);
    return pid;
  }
  PyOS_AfterFork_Child();
  // CPython deleted every other thread's state (and would have deleted
  // every sub-interpreter).
  detail::ThreadStateCache::Get().ForgetFreedStatesAfterFork(self);
  detail::InterpreterRegistry::Get().ForgetAllAfterFork();
  detail::HandRuntimeToForkChild(self, tstate);
  return 0;
}

}  // namespace pyscope
