// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// LiveGuards / DescribeLiveGuards (pyscope/introspection.h): a snapshot of
// the records the thread-state cache keeps, with their gate slots, and of
// the interpreter registry. Other threads' own fields are read without
// stopping them (atomically, but not in step with each other); no CPython
// object is touched, so it works from any thread at any time.

#include "pyscope/introspection.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gate.h"
#include "interpreter_registry.h"
#include "misuse.h"
#include "platform.h"
#include "thread_state_cache.h"

namespace pyscope {
namespace {

using detail::Gate;
using detail::Record;

template <typename T>
T ReadRacy(const T& field) {
  return __atomic_load_n(&field, __ATOMIC_RELAXED);
}

// A thread's entry, with the interpreter still as a pointer (never
// dereferenced: the thread may delete its state at any moment).
struct Found {
  LiveGuard guard;
  PyInterpreterState* interp = nullptr;
};

Found Snapshot(Record& record, PyInterpreterState* main, int64_t now_ns) {
  Found found;
  LiveGuard& guard = found.guard;
  guard.os_thread_id = record.slot.who().os_thread_id;
  const bool exited = record.exited.load(std::memory_order_acquire);
  guard.exited = exited;
  guard.thread_name = exited ? std::string(record.exit_name)
                             : detail::platform::ThreadName(record.slot.who());
  guard.depth = ReadRacy(record.level);
  const bool holding = ReadRacy(record.holding);
  PyThreadState* tstate = ReadRacy(record.tstate);
  guard.holds_gil = holding;
  guard.gil_released = !holding && tstate != nullptr;
  guard.attaching = !holding && tstate == nullptr && !exited;
  if (tstate != nullptr) {
    if (tstate == ReadRacy(record.main_tstate)) {
      found.interp = main;
    } else {
      detail::CoreLock lock(&record.mu);
      for (const detail::OwnedThreadState& owned : record.owned) {
        if (owned.tstate == tstate) found.interp = owned.interp;
      }
    }
  }
  if (record.slot.inside()) {
    guard.outermost_kind = "GILGuard";
    guard.outermost_site = record.slot.site();
    guard.held_for = absl::Nanoseconds(now_ns - record.slot.entered_at_ns());
  }
  return found;
}

std::string Describe(const LiveGuard& guard) {
  std::string line = absl::StrCat(
      "thread ",
      detail::platform::DescribeThread(guard.os_thread_id, guard.thread_name),
      guard.exited ? " (exited)" : "", ": ", guard.depth, " scope(s), ");
  if (guard.holds_gil) {
    absl::StrAppend(&line, "holds the GIL");
  } else if (guard.gil_released) {
    absl::StrAppend(&line, "GIL released (AllowThreads) or taking it back");
  } else if (guard.attaching) {
    absl::StrAppend(&line, "attaching (waiting for the GIL)");
  } else {
    absl::StrAppend(&line, "detached");
  }
  if (guard.interpreter_id >= 0) {
    absl::StrAppend(&line, ", interpreter ", guard.interpreter_id);
  }
  if (*guard.outermost_kind != '\0') {
    absl::StrAppend(&line, "; outermost ", guard.outermost_kind, " created at ",
                    detail::Site(guard.outermost_site), ", held for ",
                    absl::FormatDuration(guard.held_for));
  }
  return line;
}

const char* StateName(Gate::State state) {
  switch (state) {
    case Gate::State::kUninitialized:
      return "uninitialized";
    case Gate::State::kRunning:
      return "running";
    case Gate::State::kFinalizing:
      return "finalizing";
    case Gate::State::kFinalized:
      return "finalized";
  }
  return "unknown";
}

}  // namespace

std::vector<LiveGuard> LiveGuards() {
  PyInterpreterState* main = Gate::Get().main_interpreter();
  const int64_t now_ns = detail::platform::MonotonicNanos();
  std::vector<Found> found;
  detail::ThreadStateCache::Get().ForEachRecord([&](Record& record) {
    if (ReadRacy(record.level) > 0) {
      found.push_back(Snapshot(record, main, now_ns));
    }
  });
  const auto interps = detail::InterpreterRegistry::Get().Live();
  std::vector<LiveGuard> result;
  result.reserve(found.size());
  for (Found& entry : found) {
    if (entry.interp != nullptr && entry.interp == main) {
      entry.guard.interpreter_id = 0;
    } else if (entry.interp != nullptr) {
      for (const auto& control : interps) {
        if (control->Alive() == entry.interp) {
          entry.guard.interpreter_id = control->id;
        }
      }
    }
    result.push_back(std::move(entry.guard));
  }
  return result;
}

std::string DescribeLiveGuards() {
  const std::vector<LiveGuard> guards = LiveGuards();
  Gate& gate = Gate::Get();
  std::string text =
      absl::StrCat("pyscope: runtime ", StateName(gate.state()),
                   " (generation ", gate.generation(), "); ", guards.size(),
                   " thread(s) inside pyscope scopes\n");
  for (const LiveGuard& guard : guards) {
    absl::StrAppend(&text, "  ", Describe(guard), "\n");
  }
  for (const auto& control : detail::InterpreterRegistry::Get().Live()) {
    const int phase = control->phase.load(std::memory_order_acquire);
    if (phase == detail::InterpControl::kEnded) continue;
    absl::StrAppend(
        &text, "  sub-interpreter ", control->id, ": ",
        detail::ThreadStateCache::Get().DescribeThreadsInside(*control).size(),
        " thread(s) inside",
        phase == detail::InterpControl::kEnding ? ", ending" : "", "\n");
  }
  return text;
}

}  // namespace pyscope
