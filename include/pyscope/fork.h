// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Fork: fork(2) done correctly around the embedded interpreter, with
// pyscope's own state valid in the child.
//
//   absl::StatusOr<pid_t> pid = pyscope::Fork();
//   if (!pid.ok()) { /* refused: see the status */ }
//   else if (*pid == 0) {
//     // The child: the runtime and GILGuard work; only this thread exists.
//     { pyscope::GILGuard gil; pyscope::Exec("import os; print(os.getpid())");
//     } _exit(0);   // or return normally and let ~ScopedRuntime finalize
//   }
//
// What Fork() does, on the calling thread: attaches it to the main
// interpreter and holds the GIL; PyOS_BeforeFork() (CPython's locks, the
// os.register_at_fork "before" hooks); fork(); then PyOS_AfterFork_Parent()
// in the parent, PyOS_AfterFork_Child() in the child (CPython's locks and
// GIL renewed, the other threads' thread states and every sub-interpreter
// deleted, threading and the "after_in_child" hooks run) — the sequence
// os.fork() uses.
//
// pyscope's state in the child: the records and cached thread states of
// the threads that do not exist there are dropped (they are listed as
// exited by LiveGuards()), so finalization never waits for them; the gate
// and the runtime stay usable, and the runtime is handed to the forking
// thread (it may be finalized there, as CPython makes that thread the main
// one). Pending main-thread calls and armed deadlines of other threads are
// forgotten in the child. New sub-interpreters can be created there.
//
// Sub-interpreters: CPython cannot fork a process that has them (in the
// child, PyOS_AfterFork_Child deadlocks deleting them on 3.9-3.12 and is a
// fatal error on 3.13), so Fork() refuses while any is alive. After a plain
// fork() (below), a SubInterpreter that a vanished thread was inside (and
// whose GIL it may have held) refuses entries and End() in the child with
// a status, and finalization then leaves Python initialized instead of
// waiting for that thread.
//
// A plain fork() by the host (not through Fork()): pyscope repairs its own
// state in the child the same way (pthread_atfork handlers registered when
// libpyscope loads), so finalization in the child never waits for threads
// that do not exist. CPython's state is another matter: without
// PyOS_AfterFork_Child, the child can use Python only if the forking thread
// held the GIL at the fork (or nobody did), and Python threads of the parent
// make Py_FinalizeEx wait for them in the child. Use Fork().

#ifndef PYSCOPE_FORK_H_
#define PYSCOPE_FORK_H_

#include <sys/types.h>

#include "absl/status/statusor.h"
#include "pyscope/detail/export.h"
#include "pyscope/source_location.h"

namespace pyscope {

// Forks the process as described above. Returns the child's pid in the
// parent and 0 in the child.
//
// Without a running runtime it is a plain fork(). Errors (nothing forked):
// kUnavailable while the runtime is finalizing; kFailedPrecondition while
// sub-interpreters are alive, or when the calling thread is attached to
// one (CPython forks only from the main interpreter), and from CPython 3.13
// on a thread other than the runtime's (the one that created the
// ScopedRuntime): 3.13's Py_FinalizeEx resumes the main interpreter's
// initial thread state, which PyOS_AfterFork_Child deletes in the child of
// such a fork, so the child could never finalize (on 3.9-3.12 any thread
// may fork, and the child finalizes on it); the errno of fork() as a
// status (e.g. kResourceExhausted for EAGAIN).
//
// Thread-safety: may be called from any thread. It waits (boundedly) for
// other threads that are in the middle of a pyscope operation; like every
// fork of a multi-threaded process, only the calling thread continues in
// the child.
PYSCOPE_API absl::StatusOr<pid_t> Fork(
    SourceLocation where = SourceLocation::Current());

}  // namespace pyscope

#endif  // PYSCOPE_FORK_H_
