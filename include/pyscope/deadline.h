// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// ScopedDeadline: stop the Python code a thread runs once a deadline
// passes, or when another thread cancels it, by raising an exception in
// that thread (PyThreadState_SetAsyncExc).
//
//   pyscope::GILGuard gil(plugin);                 // main or a sub-interpreter
//   pyscope::ScopedDeadline deadline(absl::Milliseconds(100));
//   absl::Status ran = pyscope::TryExec(untrusted_code);
//   if (deadline.expired()) { /* ran is "TimeoutError: ..." */ }
//
// The exception is raised between two bytecodes of the thread's Python code,
// so it stops loops (`while True: pass`) but not a call blocked in C
// (time.sleep, a lock, a C extension's computation): it is raised as soon
// as that call returns to Python. Python code may catch it: the default,
// TimeoutError, is an Exception; use a BaseException subclass to make
// `except Exception:` unable to swallow it.
//
// When the scope ends the deadline is disarmed: a timer or Cancel() that
// comes later does nothing, and an exception scheduled but not yet raised
// is withdrawn, so it never fires into code outside the scope.

#ifndef PYSCOPE_DEADLINE_H_
#define PYSCOPE_DEADLINE_H_

#include <memory>
#include <new>
#include <utility>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "pyscope/annotations.h"
#include "pyscope/detail/compat.h"
#include "pyscope/detail/export.h"
#include "pyscope/detail/stack_only.h"
#include "pyscope/error.h"
#include "pyscope/source_location.h"

namespace pyscope {

struct DeadlineOptions {
  // The exception class to raise (borrowed; the scope keeps a reference
  // while it lives). It must be a class derived from BaseException that
  // belongs to the thread's interpreter: a built-in one (PyExc_TimeoutError,
  // PyExc_KeyboardInterrupt) works in every interpreter; a class defined in
  // Python code only in the interpreter that defined it. Null: TimeoutError.
  PyObject* exception_type = nullptr;
};

namespace detail {
struct DeadlineState;  // src/deadline.cc
PYSCOPE_API absl::Status ArmDeadline(std::shared_ptr<DeadlineState>* state,
                                     absl::Duration timeout,
                                     const DeadlineOptions& options,
                                     const SourceLocation& where);
PYSCOPE_API void DisarmDeadline(DeadlineState* state) noexcept;
PYSCOPE_API bool CancelDeadline(DeadlineState* state);
PYSCOPE_API int DeadlineOutcome(const DeadlineState* state);
}  // namespace detail

// Cancels a ScopedDeadline from any thread. Copyable; may outlive the
// scope (Cancel() then does nothing). A default-constructed handle refers to
// nothing.
class PYSCOPE_API CancelHandle {
 public:
  CancelHandle() = default;

  // Schedules the exception in the scope's thread now, unless the scope
  // ended or it was already scheduled. Returns whether this call scheduled
  // it. Never blocks: the exception is set from pyscope's own thread, which
  // takes the interpreter's GIL as soon as the thread lets it go (at once
  // for Python code; when a blocking C call returns otherwise).
  bool Cancel() const {
    return state_ != nullptr && detail::CancelDeadline(state_.get());
  }

 private:
  friend class ScopedDeadline;
  explicit CancelHandle(std::shared_ptr<detail::DeadlineState> state)
      : state_(std::move(state)) {}
  std::shared_ptr<detail::DeadlineState> state_;
};

// Limits the Python code run on the calling thread, in the interpreter it
// is attached to (the main one or a pyscope SubInterpreter), during the
// scope: once `timeout` has passed (absl::InfiniteDuration() for "only when
// cancelled"), or when Cancel() is called, the exception of `options` is
// raised in the thread. Stack-only.
//
// Preconditions: the calling thread holds the GIL (a GILGuard is in scope);
// the scope ends on that thread before the guard does.
//
// Errors (the throwing constructors throw pyscope::Error; the std::nothrow
// form reports through status() and arms nothing): kFailedPrecondition
// without the GIL, or in an interpreter pyscope did not create;
// kInvalidArgument when exception_type is not an exception class.
//
// Thread-safety: Cancel(), handle(), fired(), expired() and cancelled() may
// be called from any thread while the scope lives.
class [[nodiscard]] ScopedDeadline {
  PYSCOPE_INTERNAL_STACK_ONLY(ScopedDeadline)

 public:
  [[nodiscard]] explicit ScopedDeadline(
      absl::Duration timeout,
      SourceLocation where = SourceLocation::Current()) PYSCOPE_REQUIRES_GIL
      : ScopedDeadline(timeout, DeadlineOptions(), where) {}
  [[nodiscard]] ScopedDeadline(
      absl::Duration timeout, const DeadlineOptions& options,
      SourceLocation where = SourceLocation::Current()) PYSCOPE_REQUIRES_GIL {
    status_ = detail::ArmDeadline(&state_, timeout, options, where);
    if (!status_.ok()) throw Error(status_);
  }
  [[nodiscard]] ScopedDeadline(
      absl::Duration timeout, const DeadlineOptions& options,
      const std::nothrow_t&,
      SourceLocation where = SourceLocation::Current()) PYSCOPE_REQUIRES_GIL {
    status_ = detail::ArmDeadline(&state_, timeout, options, where);
  }
  ~ScopedDeadline() {
    if (state_ != nullptr) detail::DisarmDeadline(state_.get());
  }

  bool ok() const noexcept { return status_.ok(); }
  const absl::Status& status() const noexcept { return status_; }

  // A handle for other threads.
  CancelHandle handle() const { return CancelHandle(state_); }
  // Same as handle().Cancel().
  bool Cancel() {
    return state_ != nullptr && detail::CancelDeadline(state_.get());
  }

  // Whether the exception was scheduled (by the deadline or by Cancel()).
  bool fired() const { return expired() || cancelled(); }
  // Whether it was scheduled because the deadline passed.
  bool expired() const { return Outcome() == 1; }
  // Whether it was scheduled by Cancel().
  bool cancelled() const { return Outcome() == 2; }

 private:
  int Outcome() const {
    return state_ == nullptr ? 0 : detail::DeadlineOutcome(state_.get());
  }

  std::shared_ptr<detail::DeadlineState> state_;
  absl::Status status_;
};

}  // namespace pyscope

#endif  // PYSCOPE_DEADLINE_H_
