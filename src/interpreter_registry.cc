// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0

#include "interpreter_registry.h"

#include <algorithm>
#include <condition_variable>
#include <new>
#include <utility>

#include "absl/strings/str_cat.h"

namespace pyscope::detail {

PyInterpreterState* InterpControl::Alive() {
  CoreLock lock(&mu);
  return ended ? nullptr : interp;
}

absl::Status InterpControl::EndedError() const {
  if (lost_in_fork) {
    return absl::FailedPreconditionError(absl::StrCat(
        "pyscope: sub-interpreter ", id,
        " does not exist in this fork child (CPython keeps only the main "
        "interpreter in the child of a fork); it cannot be entered"));
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "pyscope: sub-interpreter ", id, " has ended; it cannot be entered"));
}

absl::Status InterpControl::Enter(ThreadRecord* record) {
  CoreLock lock(&mu);
  if (ended || interp == nullptr) return EndedError();
  if (lost_in_fork) {
    return absl::FailedPreconditionError(absl::StrCat(
        "pyscope: sub-interpreter ", id,
        " cannot be used in this fork child: a thread that was inside it (or "
        "ending it) at the fork does not exist here"));
  }
  if (ending) {
    return absl::UnavailableError(
        absl::StrCat("pyscope: sub-interpreter ", id,
                     " is ending; new entries are refused"));
  }
  active.push_back(record);
  return absl::OkStatus();
}

void InterpControl::Leave(ThreadRecord* record) {
  CoreLock lock(&mu);
  active.erase(std::find(active.begin(), active.end(), record));
  if (ending && active.empty()) idle.notify_all();
}

InterpreterRegistry& InterpreterRegistry::Get() {
  // Never destroyed: thread-exit hooks may run after static destruction.
  static InterpreterRegistry* const registry = new InterpreterRegistry;
  return *registry;
}

void InterpreterRegistry::Add(std::shared_ptr<InterpControl> control) {
  CoreLock lock(&mu_);
  interps_.push_back(std::move(control));
}

void InterpreterRegistry::Remove(PyInterpreterState* interp) {
  CoreLock lock(&mu_);
  interps_.erase(std::remove_if(interps_.begin(), interps_.end(),
                                [interp](const auto& control) {
                                  return control->interp == interp;
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
    if (candidate->interp != interp) continue;
    CoreLock control_lock(&candidate->mu);
    if (candidate->ended) return ExitAction::kGone;
    if (candidate->ending) return ExitAction::kOrphan;
    candidate->active.push_back(record);
    *control = candidate.get();
    return ExitAction::kDelete;
  }
  return ExitAction::kGone;
}

void InterpreterRegistry::LeaveAll(ThreadRecord* record) {
  CoreLock lock(&mu_);
  for (const auto& control : interps_) {
    CoreLock control_lock(&control->mu);
    auto& active = control->active;
    const size_t before = active.size();
    active.erase(std::remove(active.begin(), active.end(), record),
                 active.end());
    if (active.size() != before && control->ending && active.empty()) {
      control->idle.notify_all();
    }
  }
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
  for (const auto& control : interps_) {
    CoreLock control_lock(&control->mu);
    auto& active = control->active;
    const size_t before = active.size();
    active.erase(std::remove_if(active.begin(), active.end(),
                                [survivor](const ThreadRecord* record) {
                                  return record != survivor;
                                }),
                 active.end());
    // Threads that waited on `idle` do not exist here.
    new (&control->idle) std::condition_variable();
    if (active.size() != before || control->end_in_progress) {
      // A thread that does not exist here was inside it (and may hold its
      // GIL) or was ending it: entering or ending it could wait forever.
      // It stays alive and refuses both with a status; the runtime's
      // finalization then leaves Python initialized rather than hang.
      control->lost_in_fork = true;
      control->ending = true;
      control->end_in_progress = true;
    }
  }
}

void InterpreterRegistry::ForgetAllAfterFork() {
  CoreLock lock(&mu_);
  for (const auto& control : interps_) {
    CoreLock control_lock(&control->mu);
    control->lost_in_fork = true;
    control->ended = true;
    control->ending = false;
    control->end_in_progress = false;
    control->interp = nullptr;
    control->active.clear();
  }
  interps_.clear();
}

}  // namespace pyscope::detail
