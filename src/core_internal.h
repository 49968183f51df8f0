// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Process-wide state of the compiled core, shared by src/*.cc only.

#ifndef PYSCOPE_SRC_CORE_INTERNAL_H_
#define PYSCOPE_SRC_CORE_INTERNAL_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "pyscope/detail/core.h"
#include "pyscope/runtime.h"

namespace pyscope::detail {

// The core's locks: std::mutex with Abseil's thread-safety annotations.
// They are held for a few instructions on attach paths (a sub-interpreter
// entry takes two), where Debian's Abseil 20220623 absl::Mutex costs ~45 ns
// per uncontended lock/unlock pair (deadlock detection is on by default)
// against ~2.5 ns for std::mutex, and creates a per-thread identity on a
// thread's first lock (~0.5 us). See docs/performance.md (scenario 6).
class ABSL_LOCKABLE CoreMutex {
 public:
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  std::mutex& native() { return mu_; }

 private:
  std::mutex mu_;
};

class ABSL_SCOPED_LOCKABLE CoreLock {
 public:
  explicit CoreLock(CoreMutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu)
      : mu_(mu) {
    mu_->Lock();
  }
  ~CoreLock() ABSL_UNLOCK_FUNCTION() {
    if (mu_ != nullptr) mu_->Unlock();
  }
  // Unlocks before the end of the scope.
  void Release() ABSL_UNLOCK_FUNCTION() {
    mu_->Unlock();
    mu_ = nullptr;
  }
  CoreLock(const CoreLock&) = delete;
  CoreLock& operator=(const CoreLock&) = delete;

 private:
  CoreMutex* mu_;
};

// A thread state pyscope created for one (thread, interpreter, generation).
struct OwnedThreadState {
  PyInterpreterState* interp;
  uint64_t generation;
  PyThreadState* tstate;
};

// The core-side half of a ThreadRecord.
struct RecordImpl {
  CoreMutex mu;
  std::vector<OwnedThreadState> owned ABSL_GUARDED_BY(mu);
  unsigned long handle = 0;  // pthread_t
  // The generation under which the outermost scope attached; a re-attach
  // under another generation (or after the point of no return) would touch
  // freed interpreter state.
  uint64_t scope_generation = 0;
  // This thread's main-interpreter thread state under `main_generation`
  // (pyscope-owned, or the initializing thread's), used without a lookup.
  PyThreadState* main_tstate = nullptr;
  uint64_t main_generation = 0;
  // Set when the thread exited with guard scopes open (the record is then
  // kept, never freed, for the leaked guards to find).
  std::atomic<bool> exited{false};
  char exit_name[32] = "";  // the thread's name when it exited
};

// One per SubInterpreter; shared with the core's registry so finalization
// can end interpreters whose owner is still alive.
struct InterpControl {
  CoreMutex mu;
  PyInterpreterState* interp = nullptr;  // null once ended
  int64_t id = -1;
  uint64_t generation = 0;
  bool ending ABSL_GUARDED_BY(mu) = false;
  bool ended ABSL_GUARDED_BY(mu) = false;
  // An End() call is running (on some thread).
  bool end_in_progress ABSL_GUARDED_BY(mu) = false;
  // Threads inside a scope of this interpreter (or deleting their cached
  // thread state for it at thread exit).
  std::vector<ThreadRecord*> active ABSL_GUARDED_BY(mu);
  absl::Duration end_deadline = absl::Seconds(5);
  // Signalled when `active` becomes empty while `ending`.
  std::condition_variable idle;
};

// Ends the interpreter of `control` (SubInterpreter::End).
absl::Status EndInterpreter(InterpControl& control);

// A cached thread state whose thread exited while its interpreter was
// ending: the ending thread deletes it.
struct OrphanThreadState {
  PyInterpreterState* interp;
  PyThreadState* tstate;
};

struct Core {
  CoreMutex mu;
  std::vector<ThreadRecord*> records ABSL_GUARDED_BY(mu);
  // Records of threads that exited with guard scopes open.
  std::vector<ThreadRecord*> exited_records ABSL_GUARDED_BY(mu);
  std::vector<std::function<void()>> exit_callbacks ABSL_GUARDED_BY(mu);
  const void* live_runtime ABSL_GUARDED_BY(mu) = nullptr;
  std::vector<std::shared_ptr<InterpControl>> interps ABSL_GUARDED_BY(mu);
  std::vector<OrphanThreadState> orphans ABSL_GUARDED_BY(mu);

  std::atomic<int> state{static_cast<int>(RuntimeState::kUninitialized)};
  // Set once finalization passes its point of no return (Py_FinalizeEx is
  // about to run); cleared by the next initialization.
  std::atomic<bool> hard{false};
  std::atomic<uint64_t> generation{0};
  // The newest generation whose thread states CPython freed (Py_FinalizeEx
  // returned); an adopted runtime's end frees nothing and leaves it.
  std::atomic<uint64_t> freed_generation{0};

  // Written by the initializing thread before `state` becomes kRunning.
  PyInterpreterState* main_interp = nullptr;
  ThreadRecord* init_record = nullptr;
  PyThreadState* init_tstate = nullptr;
};

// The process-wide core. Created during libpyscope's static initialization
// and never destroyed: thread-exit hooks may run after static destruction.
extern Core* const core_instance;
inline Core& GetCore() { return *core_instance; }

// Registers the asymmetric fences of the attach gate (once per process).
void PrepareGateFences();

// The finalizer's side of the attach gate: after it stores a new gate state
// and before it reads the threads' `attaching` flags.
void GateFence();
inline RecordImpl& ImplOf(ThreadRecord& record) {
  return *static_cast<RecordImpl*>(record.impl);
}

// Status for a refused attachment in runtime state `state`.
absl::Status RefusalFor(int state);

// Waits until no other thread is attaching or inside a cold-attached scope,
// up to `deadline`. Returns kDeadlineExceeded naming the threads still inside.
absl::Status DrainAttachedThreads(absl::Duration deadline);

// Waits until no thread is in the middle of attaching.
void WaitForAttachingThreads();

// Deletes every cached thread state for `interp` (null: for every
// interpreter of the current generation) that belongs to a thread not inside
// a scope, and the orphans of `interp`. Requires `interp`'s GIL (the main
// one for null); never deletes `keep`.
void DeleteCachedThreadStates(PyInterpreterState* interp, PyThreadState* keep);

// The calling thread's thread state for `interp` under `generation`: one
// CPython already associates with the thread (main interpreter), else one
// pyscope created and caches until the thread exits. For a sub-interpreter
// the thread's main-interpreter state is created first, so that CPython's
// PyGILState binding of the thread never points into a sub-interpreter.
PyThreadState* ThreadStateFor(ThreadRecord& record, PyInterpreterState* interp,
                              uint64_t generation);

// Records `tstate` as the calling thread's cached state for `interp`.
void AdoptThreadState(ThreadRecord& record, PyInterpreterState* interp,
                      PyThreadState* tstate);

// Ends every live sub-interpreter (runtime finalization). Returns the first
// failure.
absl::Status EndAllInterpreters();

// "1234 (\"worker\")" for a record, or for the calling thread.
std::string DescribeThread(const ThreadRecord& record);

}  // namespace pyscope::detail

#endif  // PYSCOPE_SRC_CORE_INTERNAL_H_
