// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0

#include "interpreter_registry.h"

#include <algorithm>
#include <condition_variable>
#include <new>
#include <utility>

#include "absl/strings/str_cat.h"
#include "thread_state_cache.h"

namespace pyscope::detail {

absl::Status InterpControl::EndedError() const {
  if (lost_in_fork.load(std::memory_order_relaxed)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "pyscope: sub-interpreter ", id,
        " does not exist in this fork child (CPython keeps only the main "
        "interpreter in the child of a fork); it cannot be entered"));
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "pyscope: sub-interpreter ", id, " has ended; it cannot be entered"));
}

absl::Status InterpControl::Enter(ThreadRecord* record) {
  entries.fetch_add(1, std::memory_order_seq_cst);
  const int now = phase.load(std::memory_order_seq_cst);
  if (now == kOpen) {
    RecordOf(*record).EnterControl(this);
    return absl::OkStatus();
  }
  Leave(nullptr);
  if (now == kEnded) return EndedError();
  if (lost_in_fork.load(std::memory_order_relaxed)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "pyscope: sub-interpreter ", id,
        " cannot be used in this fork child: a thread that was inside it (or "
        "ending it) at the fork does not exist here"));
  }
  return absl::UnavailableError(absl::StrCat(
      "pyscope: sub-interpreter ", id, " is ending; new entries are refused"));
}

void InterpControl::Leave(ThreadRecord* record) {
  if (record != nullptr) RecordOf(*record).LeaveControl(this);
  if (entries.fetch_sub(1, std::memory_order_seq_cst) == 1 &&
      phase.load(std::memory_order_seq_cst) == kEnding) {
    CoreLock lock(&mu);
    idle.notify_all();
  }
}

InterpreterRegistry& InterpreterRegistry::Get() {
  // Never destroyed: thread-exit hooks may run after static destruction.
  static InterpreterRegistry* const registry = new InterpreterRegistry;
  return *registry;
}

uint64_t InterpreterRegistry::NextUid() {
  return next_uid_.fetch_add(1, std::memory_order_relaxed);
}

void InterpreterRegistry::Add(std::shared_ptr<InterpControl> control) {
  CoreLock lock(&mu_);
  interps_.push_back(std::move(control));
}

void InterpreterRegistry::Remove(const InterpControl* control) {
  CoreLock lock(&mu_);
  interps_.erase(std::remove_if(interps_.begin(), interps_.end(),
                                [control](const auto& candidate) {
                                  return candidate.get() == control;
                                }),
                 interps_.end());
}

std::vector<std::shared_ptr<InterpControl>> InterpreterRegistry::Live() const {
  CoreLock lock(&mu_);
  return interps_;
}

bool InterpreterRegistry::empty() const {
  CoreLock lock(&mu_);
  return interps_.empty();
}

InterpreterRegistry::ExitAction InterpreterRegistry::ForThreadExit(
    PyInterpreterState* interp, ThreadRecord* record, InterpControl** control) {
  CoreLock lock(&mu_);
  for (const auto& candidate : interps_) {
    if (candidate->interp.load(std::memory_order_acquire) != interp) continue;
    candidate->entries.fetch_add(1, std::memory_order_seq_cst);
    const int now = candidate->phase.load(std::memory_order_seq_cst);
    if (now == InterpControl::kEnded) {
      candidate->Leave(nullptr);
      return ExitAction::kGone;
    }
    (void)record;
    *control = candidate.get();
    return now == InterpControl::kOpen ? ExitAction::kDelete
                                       : ExitAction::kOrphan;
  }
  return ExitAction::kGone;
}

bool InterpreterRegistry::LockForFork(int patience_ms)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  fork_locked_.clear();
  fork_missed_.clear();
  fork_locked_registry_ = LockWithin(mu_, patience_ms);
  if (!fork_locked_registry_) return false;
  for (const auto& control : interps_) {
    (LockWithin(control->mu, patience_ms) ? fork_locked_ : fork_missed_)
        .push_back(&control->mu);
  }
  return fork_missed_.empty();
}

void InterpreterRegistry::UnlockAfterFork(bool in_child)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  for (CoreMutex* mu : fork_locked_) mu->Unlock();
  if (in_child) {
    for (CoreMutex* mu : fork_missed_) RenewInForkChild(*mu);
  }
  if (fork_locked_registry_) {
    mu_.Unlock();
  } else if (in_child) {
    RenewInForkChild(mu_);
  }
  fork_locked_.clear();
  fork_missed_.clear();
  fork_locked_registry_ = false;
}

void InterpreterRegistry::ForgetOtherThreadsAfterFork(
    const ThreadRecord* survivor) {
  CoreLock lock(&mu_);
  const Record& own = static_cast<const Record&>(*survivor);
  for (const auto& control : interps_) {
    CoreLock control_lock(&control->mu);
    // The survivor's own scopes inside it stay counted; the other threads'
    // entries belong to threads that do not exist here.
    int own_entries = 0;
    for (const auto& slot : own.entered) {
      if (slot.load(std::memory_order_relaxed) == control.get()) ++own_entries;
    }
    const int before = control->entries.exchange(own_entries);
    // Threads that waited on `idle` do not exist here.
    new (&control->idle) std::condition_variable();
    if (before != own_entries || control->end_in_progress) {
      // A thread that does not exist here was inside it (and may hold its
      // GIL) or was ending it: entering or ending it could wait forever.
      // It stays alive and refuses both with a status; the runtime's
      // finalization then leaves Python initialized rather than hang.
      control->lost_in_fork.store(true);
      control->phase.store(InterpControl::kEnding);
      control->end_in_progress = true;
    }
  }
}

void InterpreterRegistry::ForgetAllAfterFork() {
  CoreLock lock(&mu_);
  for (const auto& control : interps_) {
    CoreLock control_lock(&control->mu);
    control->lost_in_fork.store(true);
    control->phase.store(InterpControl::kEnded);
    control->end_in_progress = false;
    control->interp.store(nullptr);
    control->entries.store(0);
    control->epoch.fetch_add(1);
  }
  interps_.clear();
}

}  // namespace pyscope::detail
