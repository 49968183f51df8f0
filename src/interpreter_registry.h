// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// The live sub-interpreters: one control block per SubInterpreter, shared
// with the registry so that finalization can end interpreters whose owner
// is still alive, with a count of the scopes inside each.

#ifndef PYSCOPE_SRC_INTERPRETER_REGISTRY_H_
#define PYSCOPE_SRC_INTERPRETER_REGISTRY_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "lock.h"
#include "pyscope/detail/core.h"

namespace pyscope::detail {

// One per SubInterpreter.
//
// Entering is lock-free: a scope counts itself in `entries` and then reads
// `phase`; End stores kEnding and then waits for `entries` to reach zero.
// Both sides are sequentially consistent, so either the scope sees kEnding
// and backs out, or End sees the scope and waits for it.
struct InterpControl {
  enum Phase : int { kOpen, kEnding, kEnded };

  // Set at creation.
  int64_t id = -1;
  uint64_t generation = 0;
  // Unique for the life of the process (a control block's address may be
  // reused): keys the threads' cached thread states.
  uint64_t uid = 0;
  absl::Duration end_deadline = absl::Seconds(5);
  // Whether PyGILState_Ensure inside a scope attaches here (3.12+; see
  // SubInterpreterOptions::pygilstate_follows_scope): the thread's
  // PyGILState binding then moves back at every scope end.
  bool rebind_gilstate = true;

  // The interpreter; null once ended.
  std::atomic<PyInterpreterState*> interp{nullptr};
  std::atomic<int> phase{kOpen};
  // Scopes inside (and threads deleting their cached state at exit).
  std::atomic<int> entries{0};
  // Incremented whenever an End attempt deletes the cached thread states
  // of other threads, so that their per-thread shortcut stops using them.
  std::atomic<uint64_t> epoch{0};

  CoreMutex mu;
  // An End() call is running (on some thread).
  bool end_in_progress ABSL_GUARDED_BY(mu) = false;
  // Signalled (under mu) when `entries` reaches zero while kEnding.
  std::condition_variable idle;
  // Unusable in a fork child: CPython deleted it (PyOS_AfterFork_Child
  // deletes every sub-interpreter; `ended` is set too), or, after a plain
  // fork(), a thread that does not exist in the child was inside it.
  std::atomic<bool> lost_in_fork{false};

  // The interpreter, or null once it ended.
  PyInterpreterState* Alive() const {
    return phase.load(std::memory_order_acquire) == kEnded
               ? nullptr
               : interp.load(std::memory_order_acquire);
  }
  // Counts `record` in: kFailedPrecondition once ended, kUnavailable while
  // ending (not counted then).
  absl::Status Enter(ThreadRecord* record);
  // Undoes Enter.
  void Leave(ThreadRecord* record);
  // The refusal of an entry after the end.
  absl::Status EndedError() const;
};

class InterpreterRegistry {
 public:
  static InterpreterRegistry& Get();

  // A process-unique id for a new control block.
  uint64_t NextUid();

  void Add(std::shared_ptr<InterpControl> control);
  void Remove(const InterpControl* control);
  // The live interpreters, oldest first.
  std::vector<std::shared_ptr<InterpControl>> Live() const;
  bool empty() const;

  // What a thread that exits does with its cached state for `interp`.
  enum class ExitAction {
    kGone,    // the interpreter ended: CPython freed the state
    kOrphan,  // it is ending: leave the state to the thread ending it
    kDelete,  // alive: delete it inside the interpreter
  };
  // For kOrphan and kDelete, `record` is counted into `*control`; the
  // caller leaves it once the state is deleted or orphaned.
  ExitAction ForThreadExit(PyInterpreterState* interp, ThreadRecord* record,
                           InterpControl** control);

  // --- fork(2) (fork.cc; pthread_atfork handlers). ---
  // Takes the registry's lock, then every control block's, across a fork,
  // each waiting at most `patience_ms`; false if one could not be taken.
  bool LockForFork(int patience_ms);
  // After the fork: releases what LockForFork took; in the child, renews
  // the locks it could not take.
  void UnlockAfterFork(bool in_child);
  // In a fork child, where only `survivor` exists: the other threads leave
  // every interpreter (without waking anyone: a waiter would be a thread
  // that does not exist); an interpreter that one of them was inside, or
  // was ending, refuses entries and End() from then on (lost_in_fork).
  void ForgetOtherThreadsAfterFork(const ThreadRecord* survivor);
  // In a fork child after PyOS_AfterFork_Child, which deleted every
  // sub-interpreter: marks each one ended (lost_in_fork) and forgets it,
  // so that entering it is refused with a status and End() is a no-op.
  void ForgetAllAfterFork();

 private:
  InterpreterRegistry() = default;

  std::atomic<uint64_t> next_uid_{1};
  mutable CoreMutex mu_;
  std::vector<std::shared_ptr<InterpControl>> interps_ ABSL_GUARDED_BY(mu_);
  // What LockForFork took, and could not take (the forking thread only).
  bool fork_locked_registry_ = false;
  std::vector<CoreMutex*> fork_locked_;
  std::vector<CoreMutex*> fork_missed_;
};

// Ends the interpreter of `control` (SubInterpreter::End; sub_interpreter.cc
// has the protocol).
absl::Status EndInterpreter(InterpControl& control);

// Ends every live sub-interpreter, newest first (runtime finalization).
// Returns the first failure.
absl::Status EndAllInterpreters();

}  // namespace pyscope::detail

#endif  // PYSCOPE_SRC_INTERPRETER_REGISTRY_H_
