// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// What the extras (main_thread.cc, deadline.cc, fork.cc, ...) expose to
// the rest of the core: the steps that runtime finalization and fork call.

#ifndef PYSCOPE_SRC_EXTRAS_H_
#define PYSCOPE_SRC_EXTRAS_H_

#include "pyscope/annotations.h"

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
void PrepareDeadlinesForFork();
void DeadlinesAfterForkInParent();
void DeadlinesAfterForkInChild();

}  // namespace pyscope::detail

#endif  // PYSCOPE_SRC_EXTRAS_H_
