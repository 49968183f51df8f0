// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// The core's locks: std::mutex with Abseil's thread-safety annotations.
// They are held for a few instructions on attach paths, where Debian's
// Abseil 20220623 absl::Mutex costs ~45 ns per uncontended lock/unlock pair
// (deadlock detection is on by default) against ~2.5 ns for std::mutex,
// and creates a per-thread identity on a thread's first lock (~0.5 us).
// See docs/performance.md.

#ifndef PYSCOPE_SRC_LOCK_H_
#define PYSCOPE_SRC_LOCK_H_

#include <chrono>
#include <mutex>
#include <new>
#include <thread>

#include "absl/base/thread_annotations.h"

namespace pyscope::detail {

class ABSL_LOCKABLE CoreMutex {
 public:
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  // For std::condition_variable waits, which the analysis cannot follow.
  std::mutex& native() { return mu_; }

 private:
  std::mutex mu_;
};

// For fork(2) (fork.cc): takes `mu` if it becomes free within
// `patience_ms` milliseconds, so that a fork never waits forever for a
// thread blocked while holding it. Returns whether it was taken.
inline bool LockWithin(CoreMutex& mu,
                       int patience_ms) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  for (int waited = 0;; ++waited) {
    if (mu.native().try_lock()) return true;
    if (waited >= patience_ms) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// In a fork child, for a lock LockWithin could not take before the fork:
// its holder does not exist in the child, so it is replaced by a new,
// unlocked one (the old one is abandoned, never destroyed).
inline void RenewInForkChild(CoreMutex& mu) { new (&mu) CoreMutex(); }

class ABSL_SCOPED_LOCKABLE CoreLock {
 public:
  explicit CoreLock(CoreMutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) {
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

}  // namespace pyscope::detail

#endif  // PYSCOPE_SRC_LOCK_H_
