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

// --- What the inline fast paths read ---
//
// The words below are owned and written by the compiled core: GateWords by
// the Gate (src/gate.h, which documents the admission protocol), a
// ThreadRecord by its own thread and the ThreadStateCache
// (src/thread_state_cache.h). The headers read them to take the common
// paths without a call into the core: a nested GILGuard, a GILGuard that
// attaches a thread with its cached thread state, an AllowThreads inside a
// guard.

// The runtime's state as the Gate publishes it.
struct GateWords {
  std::atomic<int> state{0};  // src/gate.h Gate::State
  std::atomic<uint64_t> generation{0};
  std::atomic<bool> past_point_of_no_return{false};
  // Whether the attach side of the handshake may use a compiler fence only
  // (membarrier(2) registered; see src/platform.h).
  std::atomic<bool> light_fences{false};
};
inline constexpr int kGateRunning = 1;  // Gate::State::kRunning

PYSCOPE_API extern GateWords gate_words;

// One thread's side of the admission handshake (Gate::Slot wraps it).
// A monotonic clock in nanoseconds (platform::MonotonicNanos), read once
// per cold attachment, never on the nested path.
PYSCOPE_API int64_t ColdScopeClock() noexcept;

struct AdmissionSlot {
  // Set while the thread is between checking the gate and the end of the
  // attaching call; the finalizer waits for it.
  std::atomic<int> attaching{0};
  // The thread's cold GILGuard scopes (the drain waits for them), with the
  // site of the outermost.
  std::atomic<int> inside{0};
  std::atomic<const char*> site_file{""};
  std::atomic<const char*> site_function{""};
  std::atomic<int> site_line{0};
  // When the outermost cold scope attached (ColdScopeClock()), for
  // LiveGuards()' "held for"; meaningful while inside.
  std::atomic<int64_t> entered_at_ns{0};

  void EnterColdScope(const SourceLocation& where) {
    if (inside.load(std::memory_order_relaxed) == 0) {
      entered_at_ns.store(ColdScopeClock(), std::memory_order_relaxed);
    }
    site_file.store(where.file(), std::memory_order_relaxed);
    site_function.store(where.function(), std::memory_order_relaxed);
    site_line.store(where.line(), std::memory_order_relaxed);
    inside.store(inside.load(std::memory_order_relaxed) + 1,
                 std::memory_order_relaxed);
  }
  void LeaveColdScope() {
    inside.store(inside.load(std::memory_order_relaxed) - 1,
                 std::memory_order_release);
  }
};

// The attach side's fence of the handshake: orders the store of
// `attaching` before the loads of the gate words.
inline void AttachFence() {
  if (gate_words.light_fences.load(std::memory_order_relaxed)) {
    std::atomic_signal_fence(std::memory_order_seq_cst);
  } else {
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }
}

// The part of a thread's record that the guards' inline paths use; the
// core keeps the rest (src/thread_state_cache.h). One per OS thread that
// used pyscope. Fields that are not atomic are touched only by that thread.
struct ThreadRecord {
  // Number of live pyscope guard scopes on this thread.
  int level = 0;
  // Whether the innermost scope holds a GIL.
  bool holding = false;
  // The thread state the innermost scope runs with: attached when
  // `holding` (unless code pyscope does not see released it), parked
  // (saved by AllowThreads) otherwise; null at level 0.
  PyThreadState* tstate = nullptr;
  // The generation under which the outermost scope attached: a re-attach
  // under another one would touch freed interpreter state.
  uint64_t scope_generation = 0;
  // This thread's main-interpreter state that pyscope created, under
  // `main_generation` (attached without a look-up).
  PyThreadState* main_tstate = nullptr;
  uint64_t main_generation = 0;
  AdmissionSlot admission;
};

// What a guard remembers to undo its scope.
struct Scope {
  ThreadRecord* record;
  int level;
  bool prev_holding;
  PyThreadState* prev_tstate;
};

// The calling thread's record; null until its first use. (Initial-exec:
// one load, no __tls_get_addr call.)
PYSCOPE_API extern __thread ThreadRecord* this_thread_record
    __attribute__((tls_model("initial-exec")));

// Creates and registers the calling thread's record (retired when the
// thread exits).
PYSCOPE_API ThreadRecord& NewThreadRecord() noexcept;

// The calling thread's record.
inline ThreadRecord& ThisThread() noexcept {
  ThreadRecord* record = this_thread_record;
  if (__builtin_expect(record == nullptr, 0)) return NewThreadRecord();
  return *record;
}

// Opens a scope on the calling thread's record.
inline Scope OpenScope() noexcept {
  ThreadRecord& record = ThisThread();
  return Scope{&record, ++record.level, record.holding, record.tstate};
}

inline void CloseScope(const Scope& scope) noexcept {
  ThreadRecord& record = *scope.record;
  record.holding = scope.prev_holding;
  record.tstate = scope.prev_tstate;
  --record.level;
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

// GILGuard's common cold case: no enclosing scope holds or parks a state,
// nothing is attached, the thread has its main-interpreter state cached
// under the running generation. Attaches it through the gate and returns
// true; false (nothing done) when any of that does not hold.
inline bool AttachCachedFast(Scope& scope, const SourceLocation& where) {
  ThreadRecord& record = *scope.record;
  PyThreadState* const cached = record.main_tstate;
  if (scope.prev_tstate != nullptr || cached == nullptr ||
      compat::CurrentThreadStateUnchecked() != nullptr) {
    return false;
  }
  AdmissionSlot& admission = record.admission;
  admission.attaching.store(1, std::memory_order_relaxed);
  AttachFence();
  if (gate_words.state.load(std::memory_order_relaxed) != kGateRunning ||
      gate_words.generation.load(std::memory_order_relaxed) !=
          record.main_generation) {
    admission.attaching.store(0, std::memory_order_release);
    return false;
  }
  record.scope_generation = record.main_generation;
  admission.EnterColdScope(where);
  PyEval_RestoreThread(cached);
  admission.attaching.store(0, std::memory_order_release);
  record.holding = true;
  record.tstate = cached;
  return true;
}

// Detaches a main-interpreter scope that pyscope attached (kRestored) and
// closes it, unless finalization passed its point of no return (then the
// core decides: the thread may have been ended while waiting for the GIL).
// (Detaches by itself, which the analysis cannot follow.)
inline bool DetachRestoredFast(const Scope& scope)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (gate_words.past_point_of_no_return.load(std::memory_order_relaxed)) {
    return false;
  }
  PyEval_SaveThread();
  if (scope.prev_tstate == nullptr) scope.record->admission.LeaveColdScope();
  CloseScope(scope);
  return true;
}

// AllowThreads' common case: the enclosing scope's state is still the
// current one. Returns the detached state, or null to take the core's path.
inline PyThreadState* DetachForAllowThreadsFast(const Scope& scope)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {  // detaches by itself
  if (!scope.prev_holding ||
      compat::CurrentThreadStateUnchecked() != scope.prev_tstate) {
    return nullptr;
  }
  PyThreadState* saved = PyEval_SaveThread();
  scope.record->holding = false;
  return saved;
}

// ~AllowThreads' common case: the runtime that the scope attached under is
// running, or finalizing before its point of no return. Re-attaches `saved`
// through the gate and closes the scope; false (nothing done) otherwise.
inline bool ReattachFast(const Scope& scope, PyThreadState* saved) {
  ThreadRecord& record = *scope.record;
  AdmissionSlot& admission = record.admission;
  admission.attaching.store(1, std::memory_order_relaxed);
  AttachFence();
  if (gate_words.past_point_of_no_return.load(std::memory_order_relaxed) ||
      gate_words.generation.load(std::memory_order_relaxed) !=
          record.scope_generation) {
    admission.attaching.store(0, std::memory_order_release);
    return false;
  }
  PyEval_RestoreThread(saved);
  admission.attaching.store(0, std::memory_order_release);
  CloseScope(scope);
  return true;
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
// attaching from cold. Refused once the interpreter is ending or ended:
// returns false with the scope closed and `*error` saying why. A null
// `interp` is the main interpreter (refused unless the runtime is running):
// the way to reach it from inside a sub-interpreter scope.
PYSCOPE_API bool EnterInterpreter(Scope& scope, InterpControl* interp,
                                  const SourceLocation& where,
                                  Attachment* attachment, absl::Status* error);

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
