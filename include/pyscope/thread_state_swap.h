// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0

#ifndef PYSCOPE_THREAD_STATE_SWAP_H_
#define PYSCOPE_THREAD_STATE_SWAP_H_

#include "pyscope/annotations.h"
#include "pyscope/detail/core.h"
#include "pyscope/detail/stack_only.h"
#include "pyscope/source_location.h"

namespace pyscope {

// Makes `tstate` the calling thread's current thread state for the guard's
// scope and restores the previous one at scope exit
// (PyThreadState_Swap(tstate) ... PyThreadState_Swap(previous)). Stack-only
// (not copyable, not movable, no `new`), [[nodiscard]].
//
// Use it to run code with a thread state you manage yourself, for example
// one created with PyThreadState_New for a sub-interpreter. The caller owns
// `tstate`: create it (PyThreadState_New) and, after the scope, clear and
// delete it (PyThreadState_Clear, PyThreadState_Delete) with the GIL held.
// From CPython 3.12 a swap between interpreters with different GILs
// releases one GIL and takes the other (gh-104812), so construction and
// destruction may block.
//
// Preconditions: the calling thread holds the GIL (a GILGuard is in scope),
// `tstate` is not null and is not attached on another thread. Inside the
// scope, a nested GILGuard is nested (it stays on `tstate`'s interpreter),
// and an AllowThreads detaches `tstate`.
//
// Misuse: a null `tstate` or no GIL (Misuse::kSwapWithoutGil; if the
// handler returns, nothing is swapped and the destructor restores nothing);
// `tstate` deleted, or swapped out and not back, before the scope ends
// (Misuse::kSwapTargetLost) — the previous thread state is then not
// restored, because the swap back would run on freed memory. Destroying it
// on another thread or out of order is reported as for GILGuard
// (Misuse::kDestroyedOnOtherThread, Misuse::kDestroyedOutOfOrder).
//
// The destructor is noexcept(false): from 3.12 the swap back may have to
// take a GIL, and a thread that waits for a GIL during finalization is
// ended by CPython with a forced unwind (see AllowThreads).
class [[nodiscard]] ThreadStateSwap {
  PYSCOPE_INTERNAL_STACK_ONLY(ThreadStateSwap)

 public:
  [[nodiscard]] explicit ThreadStateSwap(
      PyThreadState* tstate,
      SourceLocation where = SourceLocation::Current()) PYSCOPE_REQUIRES_GIL
      : scope_(detail::OpenScope()),
        target_(tstate),
        where_(where) {
    previous_ = detail::SwapIn(scope_, tstate, where);
  }

  ~ThreadStateSwap() noexcept(false) {
    if (!detail::ScopeEndIsValid(scope_, detail::GuardKind::kThreadStateSwap,
                                 where_)) {
      return;
    }
    detail::SwapBack(scope_, target_, previous_, where_);
  }

  // The thread state that was current before the swap (restored at exit);
  // null if the constructor reported misuse.
  PyThreadState* previous() const noexcept { return previous_; }

 private:
  detail::Scope scope_;
  PyThreadState* target_;
  PyThreadState* previous_ = nullptr;
  SourceLocation where_;
};

}  // namespace pyscope

#endif  // PYSCOPE_THREAD_STATE_SWAP_H_
