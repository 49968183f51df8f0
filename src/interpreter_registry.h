// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// The live sub-interpreters: one control block per SubInterpreter, shared
// with the registry so that finalization can end interpreters whose owner
// is still alive, with the threads inside each.

#ifndef PYSCOPE_SRC_INTERPRETER_REGISTRY_H_
#define PYSCOPE_SRC_INTERPRETER_REGISTRY_H_

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
struct InterpControl {
  CoreMutex mu;
  PyInterpreterState* interp = nullptr;  // null once ended
  int64_t id = -1;
  uint64_t generation = 0;
  absl::Duration end_deadline = absl::Seconds(5);
  bool ending ABSL_GUARDED_BY(mu) = false;
  bool ended ABSL_GUARDED_BY(mu) = false;
  // An End() call is running (on some thread).
  bool end_in_progress ABSL_GUARDED_BY(mu) = false;
  // Threads inside a scope of this interpreter (or deleting their cached
  // thread state for it at thread exit).
  std::vector<ThreadRecord*> active ABSL_GUARDED_BY(mu);
  // Signalled when `active` becomes empty while `ending`.
  std::condition_variable idle;
  // Unusable in a fork child: CPython deleted it (PyOS_AfterFork_Child
  // deletes every sub-interpreter; `ended` is set too), or, after a plain
  // fork(), a thread that does not exist in the child was inside it.
  bool lost_in_fork = false;

  // The interpreter, or null once it ended.
  PyInterpreterState* Alive();
  // The refusal of an entry after the end.
  absl::Status EndedError() const;
  // Admits `record` into the interpreter: kFailedPrecondition once it
  // ended, kUnavailable while it is ending.
  absl::Status Enter(ThreadRecord* record);
  // Undoes Enter.
  void Leave(ThreadRecord* record);
};

class InterpreterRegistry {
 public:
  static InterpreterRegistry& Get();

  void Add(std::shared_ptr<InterpControl> control);
  void Remove(PyInterpreterState* interp);
  // The live interpreters, oldest first.
  std::vector<std::shared_ptr<InterpControl>> Live() const;
  bool empty() const;

  // What a thread that exits does with its cached state for `interp`.
  enum class ExitAction {
    kGone,    // the interpreter ended: CPython freed the state
    kOrphan,  // it is ending: leave the state to the thread ending it
    kDelete,  // alive: delete it, inside the interpreter (`*control`,
              // entered for `record`; Leave it afterwards)
  };
  ExitAction ForThreadExit(PyInterpreterState* interp, ThreadRecord* record,
                           InterpControl** control);

  // Removes `record` from every interpreter it is inside (a thread that
  // exited with scopes open).
  void LeaveAll(ThreadRecord* record);

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
