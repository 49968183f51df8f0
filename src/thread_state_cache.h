// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// The ThreadStateCache: one record per OS thread that used pyscope, and the
// thread states pyscope created for it, one per (thread, interpreter,
// generation), reused by every guard of that thread until the thread exits,
// the interpreter ends or the runtime finalizes.

#ifndef PYSCOPE_SRC_THREAD_STATE_CACHE_H_
#define PYSCOPE_SRC_THREAD_STATE_CACHE_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "gate.h"
#include "lock.h"
#include "platform.h"
#include "pyscope/detail/core.h"

namespace pyscope::detail {

// A thread state pyscope created for one (thread, interpreter, generation).
struct OwnedThreadState {
  PyInterpreterState* interp;
  uint64_t generation;
  PyThreadState* tstate;
  // Marked (compat::KeepGilStateBinding) so that attaching it leaves the
  // thread's PyGILState binding alone; unmarked before it is deleted.
  bool keeps_gilstate = false;
};

struct InterpControl;

// Everything pyscope keeps for one OS thread. The ThreadRecord part is what
// the guards' inline paths use (with the thread's cached main-interpreter
// state and its admission words); the rest only the core. Fields that are
// not atomic or guarded are touched by the owning thread only.
struct Record : ThreadRecord {
  explicit Record(platform::ThreadIdentity who) : slot(who, admission) {}

  Gate::Slot slot;

  // The sub-interpreters this thread is inside, innermost last (for End's
  // report of who is still inside, and to leave them if the thread exits
  // inside). Written by the owner; read by other threads.
  static constexpr int kTrackedEntries = 8;
  std::atomic<InterpControl*> entered[kTrackedEntries] = {};
  int entered_count = 0;  // may exceed kTrackedEntries (then not all listed)
  void EnterControl(InterpControl* control) {
    if (entered_count < kTrackedEntries) {
      entered[entered_count].store(control, std::memory_order_relaxed);
    }
    ++entered_count;
  }
  void LeaveControl(const InterpControl* control) {
    (void)control;
    if (entered_count == 0) return;
    --entered_count;
    if (entered_count < kTrackedEntries) {
      entered[entered_count].store(nullptr, std::memory_order_relaxed);
    }
  }
  bool IsInside(const InterpControl* control) const {
    for (const auto& slot : entered) {
      if (slot.load(std::memory_order_relaxed) == control) return true;
    }
    return false;
  }

  // The last sub-interpreter state this thread used, keyed by its control
  // block's uid and epoch (owner only): entry without a look-up.
  uint64_t sub_uid = 0;
  uint64_t sub_epoch = 0;
  PyThreadState* sub_tstate = nullptr;

  // Set when the thread exited with guard scopes open; the record is then
  // kept, never freed, for the leaked guards to find.
  std::atomic<bool> exited{false};
  char exit_name[32] = "";  // the thread's name when it exited

  CoreMutex mu;
  std::vector<OwnedThreadState> owned ABSL_GUARDED_BY(mu);
};

inline Record& RecordOf(ThreadRecord& record) {
  return static_cast<Record&>(record);
}
inline Record& ThisRecord() { return RecordOf(ThisThread()); }

// "1234 (\"name\")" for the thread of `record`, alive or exited.
std::string DescribeThread(const Record& record);

class ThreadStateCache {
 public:
  static ThreadStateCache& Get();

  // The calling thread's state for `interp` under `generation`: the one
  // CPython already associates with the thread (main interpreter), else one
  // pyscope created before, else a new one that pyscope keeps. For a
  // sub-interpreter the thread's main-interpreter state is created first,
  // so that CPython's PyGILState binding of the thread never points into a
  // sub-interpreter. Null when CPython cannot allocate one.
  PyThreadState* FindOrCreate(Record& record, PyInterpreterState* interp,
                              uint64_t generation);

  // The calling thread's state for the sub-interpreter of `control` (which
  // the thread has entered), through the record's shortcut first.
  PyThreadState* ForSubInterpreter(Record& record, InterpControl& control,
                                   uint64_t generation);

  // The threads inside `control`'s interpreter, described (for End's
  // report).
  std::vector<std::string> DescribeThreadsInside(const InterpControl& control);

  // Records `tstate` (created elsewhere) as the calling thread's state for
  // `interp` under `generation`.
  void Adopt(Record& record, PyInterpreterState* interp, PyThreadState* tstate,
             uint64_t generation, bool keeps_gilstate = false);

  // Removes and returns the calling thread's state for `interp` (null if it
  // has none), so that the thread ending the interpreter can use it.
  PyThreadState* TakeOwn(Record& record, PyInterpreterState* interp,
                         uint64_t generation, bool* keeps_gilstate);

  // Whether `tstate` is one pyscope created for this thread.
  bool Owns(Record& record, PyThreadState* tstate);

  // Deletes the cached states of `interp` under `generation` that belong to
  // other threads (never `keep`), and the orphans of `interp`. Requires
  // `interp`'s GIL, held by the calling thread.
  void DeleteFor(PyInterpreterState* interp, PyThreadState* keep,
                 uint64_t generation) PYSCOPE_REQUIRES_GIL;

  // The thread states of `interp`, other than `keep`, that pyscope did not
  // create (daemon threads, states made by hand). Requires `interp`'s GIL.
  int CountForeign(PyInterpreterState* interp,
                   PyThreadState* keep) PYSCOPE_REQUIRES_GIL;

  // The record of the calling thread (created on first use).
  Record& ThisThreadRecord();

  // Calls `visit` for every record, under the cache's lock: those of live
  // threads, then those of threads that exited with scopes open (`exited`
  // set). For diagnostics (pyscope::LiveGuards): the fields the owning
  // thread writes are read racily there. `visit` may lock the record's mu
  // (lock order: the cache, then a record) and must not call the cache.
  void ForEachRecord(absl::FunctionRef<void(Record&)> visit);

  // --- fork(2) (fork.cc; pthread_atfork handlers). ---
  // Takes the cache's lock, then every record's, across a fork, each
  // waiting at most `patience_ms`; false if one could not be taken (its
  // holder is blocked).
  bool LockForFork(int patience_ms);
  // After the fork: releases what LockForFork took; in the child, renews
  // the locks it could not take (their holders do not exist there).
  void UnlockAfterFork(bool in_child);
  // In a fork child, where only `survivor` (the calling thread) exists:
  // every other thread's record is kept as if its thread had exited inside
  // its scopes (marked exited, never freed: the stacks the child inherited
  // may hold guards that refer to it), and its cached thread states become
  // orphans, which the thread ending their interpreter deletes (CPython's
  // finalization frees the main interpreter's).
  void RetireOtherThreadsAfterFork(Record& survivor);
  // In a fork child after PyOS_AfterFork_Child, which deleted every other
  // thread state of the main interpreter and every sub-interpreter:
  // forgets the orphans and the survivor's sub-interpreter states.
  void ForgetFreedStatesAfterFork(Record& survivor);

 private:
  ThreadStateCache() = default;
  static void Retire(void* record);
  void FreeAtThreadExit(Record& record);
  void RecoverFromExitInsideScopes(Record& record);

  CoreMutex mu_;  // before any record's mu
  std::vector<Record*> records_ ABSL_GUARDED_BY(mu_);
  // Records of threads that exited with scopes open.
  std::vector<Record*> exited_ ABSL_GUARDED_BY(mu_);
  // A cached state whose thread exited while its interpreter was ending:
  // the ending thread deletes it.
  std::vector<OwnedThreadState> orphans_ ABSL_GUARDED_BY(mu_);
  // What LockForFork took, and could not take (the forking thread only).
  bool fork_locked_cache_ = false;
  std::vector<CoreMutex*> fork_locked_;
  std::vector<CoreMutex*> fork_missed_;
};

}  // namespace pyscope::detail

#endif  // PYSCOPE_SRC_THREAD_STATE_CACHE_H_
