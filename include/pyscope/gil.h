// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// GILGuard and AllowThreads: hold the GIL for a scope, release it for a
// scope.
//
//   void Work() {
//     pyscope::GILGuard gil;             // attach + hold the GIL
//     pyscope::Exec("x = 1");
//     {
//       pyscope::AllowThreads nogil;     // release it around blocking work
//       std::this_thread::sleep_for(1s);
//       {
//         pyscope::GILGuard again;       // take it back for a moment
//         pyscope::Exec("x += 1");
//       }
//     }
//   }                                    // released in reverse order
//
// Both are stack-only (not copyable, not movable, no `new`), [[nodiscard]],
// and annotated for Clang's thread-safety analysis: with
// `clang++ -Wthread-safety`, a PYSCOPE_REQUIRES_GIL call outside a GILGuard
// or inside an AllowThreads scope does not compile.

#ifndef PYSCOPE_GIL_H_
#define PYSCOPE_GIL_H_

#include <new>

#include "absl/status/status.h"
#include "pyscope/annotations.h"
#include "pyscope/detail/core.h"
#include "pyscope/detail/stack_only.h"
#include "pyscope/error.h"
#include "pyscope/source_location.h"

namespace pyscope {

class InterpreterView;
class SubInterpreter;

// Attaches the calling thread to a Python interpreter and holds its GIL for
// the guard's scope. Replaces PyGILState_Ensure/PyGILState_Release. (On the
// free-threaded build "holds its GIL" means attached: other threads may run
// Python at the same time; see pyscope/annotations.h.)
//
// Which interpreter: the one the calling thread is already in (inside another
// guard's scope, or when called from Python code), otherwise the main
// interpreter. It never silently switches a thread that is in a
// sub-interpreter to the main one.
//
// How, in this order:
//   - the thread already holds a GIL through a pyscope guard: nested (see
//     Cost below);
//   - the thread is inside an AllowThreads scope: re-attaches the thread
//     state that scope detached (Py_BLOCK_THREADS);
//   - the thread is attached by something else (Python code called into
//     C++; the host called PyGILState_Ensure): borrows that attachment, and
//     the destructor leaves it in place. This works whatever the runtime
//     state is, even with no ScopedRuntime;
//   - otherwise, from cold, through the runtime's attach gate: attaches the
//     thread state CPython already associates with this thread for the main
//     interpreter, or one pyscope creates for this thread on first use.
//
// Cost: when this thread already holds the GIL through pyscope, construction
// and destruction are a counter increment and decrement (reentrant, with
// pyscope's own per-thread depth rather than PyGILState_Check). A native
// thread attaches with a thread state that pyscope creates once and keeps
// for the thread's lifetime (freed at thread exit), not one per acquisition.
//
// Errors, only for an attachment from cold: the throwing constructor throws
// pyscope::Error with kFailedPrecondition when no runtime was ever started
// by pyscope, kUnavailable once finalization has begun or the runtime has
// been finalized (new attachments from native threads are refused instead
// of hanging or ending the thread), and kResourceExhausted when
// PyThreadState_New failed. The `std::nothrow` constructor reports the same
// through status().
//
// A guard belongs to the thread that created it. Misuse (reported by
// pyscope's misuse handler, see diagnostics.h): destroying the guard on
// another thread (Misuse::kDestroyedOnOtherThread), or not in the reverse
// order of creation relative to the thread's other guards
// (Misuse::kDestroyedOutOfOrder). If the handler returns, the destructor
// does nothing.
//
// Compile time: a second GILGuard in the same function while one is held is
// reported by -Wthread-safety ("acquiring GIL 'gil' that is already held"),
// and after the inner scope ends the analysis treats the GIL as released
// for the rest of the function; nest across functions instead.
class ABSL_SCOPED_LOCKABLE [[nodiscard]] GILGuard {
  PYSCOPE_INTERNAL_STACK_ONLY(GILGuard)

 public:
  // Attaches and takes the GIL, or throws pyscope::Error.
  [[nodiscard]] explicit GILGuard(
      SourceLocation where = SourceLocation::Current())
      ABSL_EXCLUSIVE_LOCK_FUNCTION(::pyscope::gil)
      : where_(where) {
    Acquire();
    if (attachment_.mode == detail::AttachMode::kFailed) throw Error(status_);
  }

  // Non-throwing form: check ok() before touching Python. When !ok(), the
  // guard holds nothing and its destructor does nothing; the thread-safety
  // analysis still treats the scope as holding the GIL, so return early.
  [[nodiscard]] GILGuard(const std::nothrow_t&,
                         SourceLocation where = SourceLocation::Current())
      ABSL_EXCLUSIVE_LOCK_FUNCTION(::pyscope::gil)
      : where_(where) {
    Acquire();
  }

  // Attaches the calling thread to `interpreter` (see sub_interpreter.h) and
  // holds its GIL; at scope end restores exactly what the thread had before
  // (no thread state, the main interpreter, or another sub-interpreter). Any
  // number of threads may be inside one interpreter at once. If the thread
  // is already in this interpreter (inside another of its scopes, or running
  // its Python code), the guard nests or borrows, even while the interpreter
  // is ending. Otherwise it throws pyscope::Error: kFailedPrecondition once
  // the interpreter has ended, kUnavailable while it is ending (or, for a
  // thread attached to no interpreter, while the runtime is finalizing),
  // kResourceExhausted if PyThreadState_New fails. A plain GILGuard() inside
  // the scope stays in this interpreter. Under -Wthread-safety it counts as
  // a second guard if opened in a function that already holds one: switch
  // interpreters in a function of its own.
  [[nodiscard]] PYSCOPE_API explicit GILGuard(
      SubInterpreter& interpreter,
      SourceLocation where = SourceLocation::Current())
      ABSL_EXCLUSIVE_LOCK_FUNCTION(::pyscope::gil);

  // Non-throwing form of GILGuard(SubInterpreter&): check ok().
  [[nodiscard]] PYSCOPE_API GILGuard(
      SubInterpreter& interpreter, const std::nothrow_t&,
      SourceLocation where = SourceLocation::Current())
      ABSL_EXCLUSIVE_LOCK_FUNCTION(::pyscope::gil);

  // Attaches the calling thread to the interpreter `view` refers to (see
  // interpreter_view.h) and holds its GIL, from any thread and inside any
  // other scope (the main interpreter from inside a sub-interpreter scope,
  // too); at scope end restores what the thread had before. Throws
  // pyscope::Error: kFailedPrecondition for an empty view, an ended
  // interpreter or a view of an earlier runtime; kUnavailable while the
  // interpreter is ending or the runtime is finalizing or finalized.
  [[nodiscard]] PYSCOPE_API explicit GILGuard(
      const InterpreterView& view,
      SourceLocation where = SourceLocation::Current())
      ABSL_EXCLUSIVE_LOCK_FUNCTION(::pyscope::gil);

  // Non-throwing form of GILGuard(const InterpreterView&): check ok().
  [[nodiscard]] PYSCOPE_API GILGuard(
      const InterpreterView& view, const std::nothrow_t&,
      SourceLocation where = SourceLocation::Current())
      ABSL_EXCLUSIVE_LOCK_FUNCTION(::pyscope::gil);

  // Undoes what the constructor did: nothing for a nested or borrowed guard,
  // PyEval_SaveThread for one that attached, and re-attaches the previous
  // thread state for one that switched interpreters. Not noexcept: that
  // re-attachment can end the thread if the runtime's finalization has
  // passed its point of no return (see AllowThreads).
  ~GILGuard() noexcept(false) ABSL_UNLOCK_FUNCTION() {
    if (attachment_.mode == detail::AttachMode::kFailed) return;
    if (!detail::ScopeEndIsValid(scope_, detail::GuardKind::kGILGuard,
                                 where_)) {
      return;
    }
    if (attachment_.mode == detail::AttachMode::kNested) {
      --scope_.record->level;
      return;
    }
    Release();
  }

  // Whether the GIL is held (always true for the throwing constructors).
  bool ok() const noexcept {
    return attachment_.mode != detail::AttachMode::kFailed;
  }

  // OK, or why the acquisition was refused.
  const absl::Status& status() const noexcept { return status_; }

 private:
  // The nested case stays in the caller; the others are out of its way.
  PYSCOPE_INTERNAL_ALWAYS_INLINE void Acquire() {
    scope_ = detail::OpenScope();
    if (scope_.prev_holding && detail::StillAttached(scope_)) {
      attachment_.mode = detail::AttachMode::kNested;
      return;
    }
    Attach();
  }

  PYSCOPE_INTERNAL_NOINLINE void Attach() {
    if (detail::AttachCachedFast(scope_, where_)) {
      attachment_.mode = detail::AttachMode::kRestored;
      return;
    }
    detail::AttachSlow(scope_, where_, &attachment_, &status_);
  }

  PYSCOPE_INTERNAL_NOINLINE void Release() {
    if (attachment_.mode == detail::AttachMode::kRestored &&
        attachment_.interp == nullptr && detail::DetachRestoredFast(scope_)) {
      return;
    }
    detail::DetachSlow(scope_, attachment_);
  }

  void Enter(detail::InterpControl* interp) {
    scope_ = detail::OpenScope();
    detail::EnterInterpreter(scope_, interp, where_, &attachment_, &status_);
  }

  detail::Scope scope_;
  detail::Attachment attachment_;
  absl::Status status_;
  SourceLocation where_;
};

// Releases the GIL (detaches the calling thread's thread state) for the
// guard's scope, so that other threads can run Python while this one blocks
// or computes. Replaces Py_BEGIN_ALLOW_THREADS / Py_END_ALLOW_THREADS,
// including on every early-return and exception path. On the free-threaded
// build, where other threads run Python anyway, it is just as needed: a
// stop-the-world pause (the garbage collector) waits for every attached
// thread, so a thread that blocks attached stalls all others there.
//
// To use Python again inside the scope (what Py_BLOCK_THREADS /
// Py_UNBLOCK_THREADS do), open a nested GILGuard: it re-attaches the same
// thread state and releases it again when it ends.
//
// Precondition: the calling thread holds the GIL (a GILGuard is in scope,
// or the code was called from Python). Under clang -Wthread-safety an
// AllowThreads with no guard in scope does not compile ("releasing GIL 'gil'
// that was not held"); at run time it is reported as
// Misuse::kAllowThreadsWithoutGil, and if the handler returns, nothing is
// detached and the destructor re-attaches nothing. Destroying it on another
// thread or out of order is reported as for GILGuard
// (Misuse::kDestroyedOnOtherThread, Misuse::kDestroyedOutOfOrder).
//
// The constructor is PyEval_SaveThread(); the destructor is
// PyEval_RestoreThread(saved) and may block waiting for the GIL. If the
// runtime's finalization has passed its point of no return (after the drain
// and after ending the sub-interpreters; Py_FinalizeEx is about to run) and
// the saved thread state is one pyscope created for this native thread, or
// Py_FinalizeEx already freed it, pyscope ends the thread instead of
// touching freed interpreter state: it writes "pyscope: ending thread ..."
// to stderr and calls pthread_exit, which unwinds the thread's stack (as
// CPython ends daemon threads). The finalizing thread is exempt while it
// runs the exit callbacks. A Python thread's own state re-attaches as
// Py_END_ALLOW_THREADS would: once Py_FinalizeEx has marked the runtime
// finalizing, CPython 3.14 parks such a (daemon) thread forever
// (gh-87135), and where an older CPython would end it inside the attach,
// pyscope ends it by unwinding instead. That is why the destructor is
// noexcept(false): the unwinding must pass through it rather than call
// std::terminate.
class ABSL_SCOPED_LOCKABLE [[nodiscard]] AllowThreads {
  PYSCOPE_INTERNAL_STACK_ONLY(AllowThreads)

 public:
  [[nodiscard]] explicit AllowThreads(
      SourceLocation where = SourceLocation::Current())
      ABSL_UNLOCK_FUNCTION(::pyscope::gil)
      : scope_(detail::OpenScope()),
        saved_(detail::DetachForAllowThreadsFast(scope_)),
        where_(where) {
    if (saved_ == nullptr)
      saved_ = detail::DetachForAllowThreads(scope_, where);
  }

  ~AllowThreads() noexcept(false) ABSL_EXCLUSIVE_LOCK_FUNCTION(::pyscope::gil) {
    if (!detail::ScopeEndIsValid(scope_, detail::GuardKind::kAllowThreads,
                                 where_)) {
      return;
    }
    if (saved_ != nullptr && detail::ReattachFast(scope_, saved_)) return;
    detail::ReattachAfterAllowThreads(scope_, saved_);
  }

 private:
  detail::Scope scope_;
  PyThreadState* saved_;
  SourceLocation where_;
};

}  // namespace pyscope

#endif  // PYSCOPE_GIL_H_
