// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0

#include "gate.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace pyscope::detail {

GateWords gate_words;

int64_t ColdScopeClock() noexcept { return platform::MonotonicNanos(); }

static_assert(static_cast<int>(Gate::State::kRunning) == kGateRunning,
              "the headers' fast paths test for kRunning");

SourceLocation Gate::Slot::site() const {
  return SourceLocation::Current(
      words_.site_file.load(std::memory_order_relaxed),
      words_.site_line.load(std::memory_order_relaxed),
      words_.site_function.load(std::memory_order_relaxed));
}

Gate::State Gate::Admission::state() const {
  return static_cast<State>(gate_words.state.load(std::memory_order_relaxed));
}

bool Gate::Admission::past_point_of_no_return() const {
  return gate_words.past_point_of_no_return.load(std::memory_order_relaxed);
}

uint64_t Gate::Admission::generation() const {
  return gate_words.generation.load(std::memory_order_acquire);
}

bool Gate::Admission::Freed(uint64_t generation) const {
  // 0: no runtime was ever started.
  return generation != 0 &&
         generation <= Get().freed_generation_.load(std::memory_order_relaxed);
}

Gate& Gate::Get() {
  // Never destroyed: thread-exit hooks may run after static destruction.
  static Gate* const gate = new Gate;
  return *gate;
}

bool Gate::IsFinalizer(const Slot& slot) const {
  return state() == State::kFinalizing &&
         finalizer_.load(std::memory_order_acquire) == &slot;
}

absl::Status Gate::RefusalFor(State state) {
  switch (state) {
    case State::kUninitialized:
      return absl::FailedPreconditionError(
          "pyscope: cannot attach to Python: no pyscope::ScopedRuntime has "
          "initialized the interpreter (create one first, or "
          "ScopedRuntime::Adopt() an interpreter the host initialized)");
    case State::kFinalizing:
      return absl::UnavailableError(
          "pyscope: cannot attach to Python: the runtime is being finalized; "
          "new attachments from native threads are refused");
    case State::kFinalized:
      return absl::UnavailableError(
          "pyscope: cannot attach to Python: the runtime has been finalized");
    case State::kRunning:
      break;
  }
  return absl::OkStatus();
}

uint64_t Gate::Open(PyInterpreterState* main) {
  gate_words.light_fences.store(platform::PrepareAsymmetricFences(),
                                std::memory_order_release);
  main_.store(main, std::memory_order_release);
  finalizer_.store(nullptr, std::memory_order_relaxed);
  const uint64_t generation =
      gate_words.generation.fetch_add(1, std::memory_order_seq_cst) + 1;
  gate_words.past_point_of_no_return.store(false, std::memory_order_seq_cst);
  Store(State::kRunning);
  return generation;
}

void Gate::Store(State state) {
  gate_words.state.store(static_cast<int>(state), std::memory_order_seq_cst);
}

void Gate::Close(Slot& finalizer) {
  finalizer_.store(&finalizer, std::memory_order_release);
  Store(State::kFinalizing);
  platform::HeavyFence();
}

absl::Status Gate::Drain(absl::Duration deadline) {
  const Slot* self = finalizer_.load(std::memory_order_acquire);
  const absl::Time end = absl::Now() + deadline;
  absl::Duration pause = absl::Microseconds(50);
  for (;;) {
    std::vector<std::string> busy;
    {
      CoreLock lock(&mu_);
      for (const Slot* slot : slots_) {
        if (slot == self) continue;
        if (slot->words_.attaching.load(std::memory_order_seq_cst) != 0 ||
            slot->inside()) {
          const SourceLocation site = slot->site();
          busy.push_back(absl::StrFormat(
              "thread %s (GILGuard created at %s:%d in %s())",
              platform::DescribeThread(slot->who().os_thread_id,
                                       platform::ThreadName(slot->who())),
              site.file(), site.line(), site.function()));
        }
      }
    }
    if (busy.empty()) return absl::OkStatus();
    if (absl::Now() >= end) {
      return absl::DeadlineExceededError(absl::StrCat(
          "pyscope: finalization went ahead after the drain deadline (",
          absl::FormatDuration(deadline), ") with ", busy.size(),
          " native thread(s) still inside a GILGuard scope: ",
          absl::StrJoin(busy, "; "),
          ". Such a thread is ended if it tries to take the GIL again."));
    }
    absl::SleepFor(pause);
    pause = std::min(pause * 2, absl::Milliseconds(2));
  }
}

bool Gate::AnyOtherAttaching(const Slot* self) const {
  CoreLock lock(&mu_);
  for (const Slot* slot : slots_) {
    if (slot != self &&
        slot->words_.attaching.load(std::memory_order_seq_cst) != 0) {
      return true;
    }
  }
  return false;
}

void Gate::WaitForAttaching() {
  const Slot* self = finalizer_.load(std::memory_order_acquire);
  while (AnyOtherAttaching(self)) absl::SleepFor(absl::Microseconds(100));
}

void Gate::PassPointOfNoReturn() {
  gate_words.past_point_of_no_return.store(true, std::memory_order_seq_cst);
  platform::HeavyFence();
  WaitForAttaching();
}

void Gate::MarkPastPointOfNoReturn() {
  gate_words.past_point_of_no_return.store(true, std::memory_order_seq_cst);
  platform::HeavyFence();
}

void Gate::MarkFreed() {
  freed_generation_.store(gate_words.generation.load(std::memory_order_acquire),
                          std::memory_order_release);
}

void Gate::Finish() {
  main_.store(nullptr, std::memory_order_release);
  gate_words.generation.fetch_add(1, std::memory_order_seq_cst);
  Store(State::kFinalized);
  finalizer_.store(nullptr, std::memory_order_release);
}

void Gate::Register(Slot& slot) {
  CoreLock lock(&mu_);
  slots_.push_back(&slot);
}

void Gate::Unregister(Slot& slot) {
  CoreLock lock(&mu_);
  slots_.erase(std::find(slots_.begin(), slots_.end(), &slot));
}

std::vector<Gate::InsideThread> Gate::ThreadsInside() const {
  std::vector<InsideThread> result;
  CoreLock lock(&mu_);
  for (const Slot* slot : slots_) {
    if (slot->inside())
      result.push_back(InsideThread{slot->who(), slot->site()});
  }
  return result;
}

bool Gate::LockForFork(int patience_ms) { return LockWithin(mu_, patience_ms); }

void Gate::UnlockAfterFork(bool locked,
                           bool in_child) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (locked) {
    mu_.Unlock();
  } else if (in_child) {
    RenewInForkChild(mu_);
  }
}

void Gate::ForgetOtherThreadsAfterFork(Slot& survivor) {
  CoreLock lock(&mu_);
  const bool registered =
      std::find(slots_.begin(), slots_.end(), &survivor) != slots_.end();
  slots_.clear();
  if (registered) slots_.push_back(&survivor);
  survivor.words_.attaching.store(0, std::memory_order_release);
}

}  // namespace pyscope::detail
