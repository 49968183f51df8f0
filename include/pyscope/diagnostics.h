// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Run-time diagnostics for misuse that C++ cannot reject at compile time.
//
// Every misuse is reported once, as one paragraph naming what went wrong,
// the guard type, the thread (OS id and name) and where the guard was
// created. The default handler writes the paragraph to stderr and aborts:
// continuing after a broken pairing would turn a clear message into a hang
// or a crash later. Tests and hosts may install their own handler; if it
// returns, the guard that detected the misuse performs no further CPython
// call and the operation reports an error status where it has one.
//
// "Holds the GIL" in these reports means "is attached to an interpreter";
// on the free-threaded build, which has no GIL, that is all it means, and
// every misuse is detected the same way there.

#ifndef PYSCOPE_DIAGNOSTICS_H_
#define PYSCOPE_DIAGNOSTICS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "pyscope/detail/export.h"
#include "pyscope/source_location.h"

namespace pyscope {

// What went wrong.
enum class Misuse {
  // A guard was destroyed on a thread other than the one that created it.
  kDestroyedOnOtherThread,
  // Guards on one thread were destroyed in a different order than the
  // reverse of their creation.
  kDestroyedOutOfOrder,
  // AllowThreads was created on a thread that does not hold the GIL.
  kAllowThreadsWithoutGil,
  // ThreadStateSwap was created on a thread that does not hold the GIL, or
  // with a null thread state.
  kSwapWithoutGil,
  // When a ThreadStateSwap scope ended, its thread state was no longer the
  // current one (it was deleted or swapped out inside the scope).
  kSwapTargetLost,
  // ScopedRuntime::Finalize (or the destructor) was called on a thread other
  // than the one that initialized the runtime.
  kFinalizeOnOtherThread,
  // ScopedRuntime::Finalize was called while the finalizing thread was still
  // inside a pyscope guard, or attached to Python by other means.
  kFinalizeWhileAttached,
  // A second ScopedRuntime was created (or adopted) while one is live.
  kSecondRuntime,
  // A thread exited while guard scopes it opened were still live (a guard
  // kept in a std::optional or an object that outlived the thread).
  kThreadExitedInsideGuard,
  // ScopedRuntime::Finalize was called while that runtime was being
  // finalized (from an exit callback).
  kFinalizeReentered,
};

// Returns the enumerator's name without the `k`, e.g. "DestroyedOutOfOrder".
// Thread-safe.
PYSCOPE_API const char* MisuseName(Misuse misuse);

// One misuse, as passed to the handler. The message is one paragraph
// (wrapped here):
//
//   pyscope misuse (<Name>): <guard> created at <file>:<line> in
//   <function>() <what happened>, on thread <tid> ("<thread name>").
//   <explanation and fix>
//
// where <Name> is MisuseName(misuse).
struct MisuseReport {
  Misuse misuse;
  // "GILGuard", "AllowThreads", "ThreadStateSwap" or "ScopedRuntime".
  const char* guard;
  // Where the guard (or runtime) involved was created.
  SourceLocation created_at;
  // The whole paragraph, as the default handler prints it.
  std::string message;
};

using MisuseHandler = void (*)(const MisuseReport& report);

// Installs `handler` and returns the previous one (null when the default was
// installed). Null restores the default, which writes report.message to
// stderr and calls std::abort(). The handler runs on the thread that
// detected the misuse, possibly while it holds a GIL. Thread-safe.
PYSCOPE_API MisuseHandler SetMisuseHandler(MisuseHandler handler);

// A thread currently inside a GILGuard scope that attached it from cold (a
// native thread, not one already running Python).
struct AttachedThread {
  uint64_t os_thread_id;  // gettid()
  std::string name;       // pthread name, may be empty
  // Where its outermost cold-attaching GILGuard was created.
  SourceLocation attached_at;
};

// A snapshot of the threads currently inside a GILGuard scope that attached
// them from cold (native threads, and the initializing thread; not threads
// whose attachment a guard borrowed): the threads ScopedRuntime::Finalize()
// drains. Thread-safe; the result may be stale as soon as it returns.
PYSCOPE_API std::vector<AttachedThread> AttachedThreads();

}  // namespace pyscope

#endif  // PYSCOPE_DIAGNOSTICS_H_
