// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// The interface between the header-only guards and the compiled core
// (src/). Internal: names here may change without notice.
//
// The core owns everything that must exist once per process: the runtime
// state machine and attach gate, the per-thread records (one per OS thread
// that used pyscope), the thread-state cache and the misuse reporting. The
// guards keep their fast paths inline (a nested GILGuard is a counter
// increment) and call into the core for everything else.

#ifndef PYSCOPE_DETAIL_CORE_H_
#define PYSCOPE_DETAIL_CORE_H_

#include <atomic>
#include <cstdint>

#include "absl/status/status.h"
#include "pyscope/detail/compat.h"
#include "pyscope/detail/export.h"
#include "pyscope/diagnostics.h"
#include "pyscope/source_location.h"

namespace pyscope::detail {

enum class GuardKind : uint8_t {
  kGILGuard,
  kAllowThreads,
  kThreadStateSwap,
  kScopedRuntime,
};

// How a GILGuard became attached; decides what its destructor undoes.
enum class AttachMode : uint8_t {
  kNested,    // this thread already held the GIL through pyscope: no-op
  kBorrowed,  // attached by something else (running Python code, a host's
              // PyGILState_Ensure): nothing to undo
  kRestored,  // pyscope attached a parked or cached thread state: detach it
  kSwitched,  // pyscope switched from another attached thread state (another
              // interpreter): switch back
  kFailed,    // acquisition refused: nothing held
};

struct InterpControl;  // one per SubInterpreter (src/interpreter_registry.h)

// What a GILGuard did, to undo it.
struct Attachment {
  AttachMode mode = AttachMode::kFailed;
  // The sub-interpreter entered (null for the main interpreter / nested).
  InterpControl* interp = nullptr;
  // For kSwitched: the thread state that was attached before.
  PyThreadState* switched_from = nullptr;
};

// The part of a thread's record that the guards' inline paths use; the
// core keeps the rest (src/thread_state_cache.h). One per OS thread that
// used pyscope, touched only by that thread.
struct ThreadRecord {
  // Number of live pyscope guard scopes on this thread.
  int level = 0;
  // Whether the innermost scope holds a GIL.
  bool holding = false;
  // The thread state the innermost scope runs with: attached when
  // `holding` (unless code pyscope does not see released it), parked
  // (saved by AllowThreads) otherwise; null at level 0.
  PyThreadState* tstate = nullptr;
};

// What a guard remembers to undo its scope.
struct Scope {
  ThreadRecord* record;
  int level;
  bool prev_holding;
  PyThreadState* prev_tstate;
};

// The calling thread's record (created and registered on first use; retired
// when the thread exits).
PYSCOPE_API ThreadRecord& ThisThread() noexcept;

// Opens a scope on the calling thread's record.
inline Scope OpenScope() noexcept {
  ThreadRecord& record = ThisThread();
  return Scope{&record, ++record.level, record.holding, record.tstate};
}

// Whether the thread state the enclosing scope of `scope` holds is still
// the calling thread's current one: false when code pyscope does not see
// released the GIL inside that scope (Py_BEGIN_ALLOW_THREADS,
// PyEval_SaveThread, pybind11's gil_scoped_release) or attached another
// state. Comparing with a state this thread holds is exact on every
// version (see compat::CurrentThreadStateUnchecked).
inline bool StillAttached(const Scope& scope) {
  return compat::CurrentThreadStateUnchecked() == scope.prev_tstate;
}

// Attaches the calling thread for a GILGuard whose fast path did not apply
// (the enclosing scope holds no GIL, or no longer does): borrows an
// attachment pyscope did not make, re-attaches the enclosing scope's parked
// thread state (parked by AllowThreads, or by a release pyscope did not
// make), or attaches from cold through the gate, to the interpreter this
// thread is in, else the main interpreter.
// Returns false, with the scope closed again and `*error` saying why
// (kFailedPrecondition: no runtime; kUnavailable: finalization has begun),
// when the gate refuses; `*error` is untouched on success.
PYSCOPE_API bool AttachSlow(Scope& scope, const SourceLocation& where,
                            Attachment* attachment, absl::Status* error);

// Attaches the calling thread to the sub-interpreter `interp` for a
// GILGuard(SubInterpreter&): nested if already in it, otherwise switching
// from the interpreter the thread is in (restored at scope end), or
// attaching from cold. Refused once the interpreter is ending or ended.
// A null `interp` is the main interpreter (refused unless the runtime is
// running): the way to reach it from inside a sub-interpreter scope.
PYSCOPE_API absl::Status EnterInterpreter(Scope& scope, InterpControl* interp,
                                          const SourceLocation& where,
                                          Attachment* attachment);

// Undoes AttachSlow / EnterInterpreter and closes the scope. May re-attach
// the previous thread state (after a switch), hence not noexcept.
PYSCOPE_API void DetachSlow(const Scope& scope, const Attachment& attachment);

// AllowThreads' constructor: detaches the calling thread (reports
// kAllowThreadsWithoutGil when it holds no GIL). Returns the saved thread
// state, or null when nothing was detached.
PYSCOPE_API PyThreadState* DetachForAllowThreads(Scope& scope,
                                                 const SourceLocation& where);

// AllowThreads' destructor: re-attaches `saved` and closes the scope. If the
// runtime is past the point of no return of finalization, ends the calling
// thread by unwinding its stack (as CPython's own take_gil would) instead of
// touching freed interpreter state.
PYSCOPE_API void ReattachAfterAllowThreads(const Scope& scope,
                                           PyThreadState* saved);

// ThreadStateSwap: swap in `target`, and restore on scope end.
PYSCOPE_API PyThreadState* SwapIn(Scope& scope, PyThreadState* target,
                                  const SourceLocation& where);
PYSCOPE_API void SwapBack(const Scope& scope, PyThreadState* target,
                          PyThreadState* previous, const SourceLocation& where);

// Checks that `scope` is being closed on its own thread and in LIFO order;
// reports the misuse and returns false otherwise.
PYSCOPE_API bool CheckScopeEnd(const Scope& scope, GuardKind kind,
                               const SourceLocation& where) noexcept;

inline bool ScopeEndIsValid(const Scope& scope, GuardKind kind,
                            const SourceLocation& where) noexcept {
  // Fast check inline: same thread (the record is thread-local) and LIFO.
  if (&ThisThread() == scope.record && scope.record->level == scope.level) {
    return true;
  }
  return CheckScopeEnd(scope, kind, where);
}

}  // namespace pyscope::detail

#endif  // PYSCOPE_DETAIL_CORE_H_
