// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0

#include "misuse.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "platform.h"

namespace pyscope::detail {
namespace {

struct MisuseRow {
  Misuse misuse;
  const char* name;      // MisuseName(): the enumerator without the `k`
  const char* headline;  // what happened to the guard, after its site
};

// One row per Misuse enumerator, in declaration order.
constexpr MisuseRow kMisuseTable[] = {
    {Misuse::kDestroyedOnOtherThread, "DestroyedOnOtherThread",
     "destroyed on a thread other than the one that created it"},
    {Misuse::kDestroyedOutOfOrder, "DestroyedOutOfOrder",
     "destroyed out of order"},
    {Misuse::kAllowThreadsWithoutGil, "AllowThreadsWithoutGil",
     "created on a thread that does not hold the GIL"},
    {Misuse::kSwapWithoutGil, "SwapWithoutGil", "cannot swap"},
    {Misuse::kSwapTargetLost, "SwapTargetLost", "lost its thread state"},
    {Misuse::kFinalizeOnOtherThread, "FinalizeOnOtherThread",
     "finalized on a thread other than the one that initialized it"},
    {Misuse::kFinalizeWhileAttached, "FinalizeWhileAttached",
     "finalized while the finalizing thread is attached to Python"},
    {Misuse::kSecondRuntime, "SecondRuntime",
     "created while another ScopedRuntime is live"},
    {Misuse::kThreadExitedInsideGuard, "ThreadExitedInsideGuard",
     "was still live when its thread exited"},
    {Misuse::kFinalizeReentered, "FinalizeReentered",
     "finalized again from inside its own finalization"},
};

// One name per GuardKind enumerator, in declaration order.
constexpr const char* kGuardNames[] = {
    "GILGuard",
    "AllowThreads",
    "ThreadStateSwap",
    "ScopedRuntime",
};

static_assert(std::size(kGuardNames) ==
                  static_cast<size_t>(GuardKind::kScopedRuntime) + 1,
              "kGuardNames follows enum GuardKind");

constexpr bool TableMatchesEnum() {
  for (size_t i = 0; i < std::size(kMisuseTable); ++i) {
    if (static_cast<size_t>(kMisuseTable[i].misuse) != i) return false;
  }
  return true;
}
static_assert(TableMatchesEnum(), "kMisuseTable follows enum Misuse");

const MisuseRow* RowOf(Misuse misuse) {
  const auto index = static_cast<size_t>(misuse);
  return index < std::size(kMisuseTable) ? &kMisuseTable[index] : nullptr;
}

std::atomic<MisuseHandler> misuse_handler{nullptr};

void DefaultMisuseHandler(const MisuseReport& report) {
  std::fprintf(stderr, "%s\n", report.message.c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace

std::string Site(const SourceLocation& where) {
  return absl::StrFormat("%s:%d in %s()", where.file(), where.line(),
                         where.function());
}

const char* GuardName(GuardKind kind) {
  const auto index = static_cast<size_t>(kind);
  return index < std::size(kGuardNames) ? kGuardNames[index] : "guard";
}

void ReportMisuse(Misuse misuse, GuardKind kind, const SourceLocation& where,
                  const char* detail) {
  const MisuseRow* row = RowOf(misuse);
  MisuseReport report{misuse, GuardName(kind), where, ""};
  report.message =
      absl::StrCat("pyscope misuse (", MisuseName(misuse),
                   "): ", GuardName(kind), " created at ", Site(where), " ",
                   row != nullptr ? row->headline : "misused", ", on thread ",
                   platform::DescribeThisThread(), ". ", detail);
  MisuseHandler handler = misuse_handler.load(std::memory_order_acquire);
  if (handler == nullptr) handler = &DefaultMisuseHandler;
  handler(report);
}

}  // namespace pyscope::detail

namespace pyscope {

const char* MisuseName(Misuse misuse) {
  const detail::MisuseRow* row = detail::RowOf(misuse);
  return row != nullptr ? row->name : "Unknown";
}

MisuseHandler SetMisuseHandler(MisuseHandler handler) {
  return detail::misuse_handler.exchange(handler, std::memory_order_acq_rel);
}

}  // namespace pyscope
