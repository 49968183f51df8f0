// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0

#include "interpreter_registry.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "thread_state_cache.h"

namespace pyscope::detail {

absl::Status InterpControl::EndedError() const {
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

}  // namespace pyscope::detail
