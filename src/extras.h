// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// What the extras (main_thread.cc, deadline.cc, fork.cc, ...) expose to
// the rest of the core: the steps that runtime finalization and fork call.

#ifndef PYSCOPE_SRC_EXTRAS_H_
#define PYSCOPE_SRC_EXTRAS_H_

#include "pyscope/annotations.h"
#include "thread_state_cache.h"

namespace pyscope::detail {

// Finalization (runtime.cc, after the exit callbacks, GIL held): refuses
// new main-thread calls for this runtime and destroys, unrun, those that
// are still pending; their futures get kCancelled.
void DiscardMainThreadCalls() PYSCOPE_REQUIRES_GIL;

// In a fork child: forgets the pending main-thread calls (their posting
// threads do not exist here), without running or destroying them — their
// closures may hold objects of the parent's other threads.
void ForgetMainThreadCallsAfterFork();

// Around fork() (pthread_atfork, fork.cc): the watchdog's lock is held
// across the fork; in the child the deadlines of the threads that do not
// exist there are dropped, and a new watchdog thread starts on demand.
bool LockDeadlinesForFork(int patience_ms);
void UnlockDeadlinesAfterFork(bool locked, bool in_child);
void ForgetDeadlinesAfterFork();

// Around fork() (fork.cc): the main-thread calls' lock.
bool LockMainThreadCallsForFork(int patience_ms);
void UnlockMainThreadCallsAfterFork(bool locked, bool in_child);

// Around fork() (runtime.cc): the process slot's lock (exit callbacks,
// which runtime is live).
bool LockRuntimeForFork(int patience_ms);
void UnlockRuntimeAfterFork(bool locked, bool in_child);
// Whether `record` is the thread that initialized the running runtime (the
// one that finalizes it).
bool IsRuntimeThread(const Record& record);
// In a fork child: when the thread that initialized the runtime is not
// `survivor` (so does not exist there), hands the runtime to `survivor`,
// with `tstate` (its main-interpreter thread state) as the state Finalize
// re-attaches, so that Finalize works in the child. No-op without a live
// runtime, when `survivor` already is that thread, or with a null `tstate`.
void HandRuntimeToForkChild(Record& survivor, PyThreadState* tstate);

}  // namespace pyscope::detail

#endif  // PYSCOPE_SRC_EXTRAS_H_
