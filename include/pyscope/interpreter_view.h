// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// InterpreterView: a copyable weak handle to an interpreter (the main one or
// a SubInterpreter) that host code can keep in callbacks, timers and queues,
// and attach through later from any thread.
//
//   pyscope::InterpreterView view = pyscope::InterpreterView::FromCurrent();
//   timers.After(5s, [view] {
//     pyscope::GILGuard gil(view, std::nothrow);
//     if (!gil.ok()) return;               // ended, ending, or finalized
//     pyscope::Exec("on_timer()");
//   });
//
// This is what PEP 788 adds to CPython 3.15 (PyInterpreterView,
// PyInterpreterView_FromCurrent / FromMain, PyThreadState_EnsureFromView),
// given here on 3.9-3.13: a view never keeps its interpreter alive and never
// dangles. Attaching through it gives the interpreter's GIL while the
// interpreter lives, and a status — never a crash, a hang or an attachment
// to the wrong interpreter — once it has ended, while it is ending, once the
// runtime is finalizing or finalized, and after the runtime was initialized
// again (a view belongs to one runtime generation).

#ifndef PYSCOPE_INTERPRETER_VIEW_H_
#define PYSCOPE_INTERPRETER_VIEW_H_

#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pyscope/annotations.h"
#include "pyscope/detail/core.h"
#include "pyscope/detail/export.h"

namespace pyscope {

class SubInterpreter;

// A weak reference to one interpreter of one runtime generation. Cheap to
// copy (a shared pointer and two integers); every member is thread-safe.
// Attach through it with `GILGuard gil(view)` (throws pyscope::Error) or
// `GILGuard gil(view, std::nothrow)` (check ok()/status()).
//
// The statuses an attachment (and Check()) gives:
//   OK                  the interpreter is alive: the guard holds its GIL;
//   kFailedPrecondition the view is empty, the sub-interpreter has ended, or
//                       the runtime it belongs to was finalized and another
//                       one started since;
//   kUnavailable        the sub-interpreter is ending, or the runtime is
//                       finalizing or finalized.
class PYSCOPE_API InterpreterView {
 public:
  // An empty view: refers to no interpreter (Check() is
  // kFailedPrecondition).
  InterpreterView() = default;

  // The main interpreter of the running runtime. Without a running runtime,
  // an empty view. Any thread, GIL not needed.
  static InterpreterView FromMain();

  // `interpreter` (alive or not). Any thread, GIL not needed.
  static InterpreterView Of(const SubInterpreter& interpreter);

  // The interpreter the calling thread is attached to: the main one, or a
  // SubInterpreter. kNotFound for an interpreter pyscope did not create
  // (raw Py_NewInterpreter), kFailedPrecondition when the calling thread is
  // not attached. Requires the GIL.
  static absl::StatusOr<InterpreterView> FromCurrent() PYSCOPE_REQUIRES_GIL;

  // OK while the interpreter can be attached to, otherwise the status an
  // attachment would give now (see the class comment). A snapshot: the
  // interpreter may end right after; attach with GILGuard to be sure.
  absl::Status Check() const;

  // Check().ok().
  bool alive() const { return Check().ok(); }

  // Whether the view refers to the main interpreter.
  bool is_main() const noexcept { return !empty() && sub_ == nullptr; }

  // Whether the view refers to nothing.
  bool empty() const noexcept { return generation_ == 0; }

  // CPython's id of the interpreter (PyInterpreterState_GetID; 0 is the
  // main interpreter), -1 for an empty view. Stays valid after the end.
  int64_t id() const noexcept { return id_; }

  // The runtime generation the view belongs to (RuntimeGeneration()).
  uint64_t generation() const noexcept { return generation_; }

  // Whether both refer to the same interpreter of the same runtime.
  friend bool operator==(const InterpreterView& a, const InterpreterView& b) {
    return a.generation_ == b.generation_ && a.id_ == b.id_;
  }
  friend bool operator!=(const InterpreterView& a, const InterpreterView& b) {
    return !(a == b);
  }

 private:
  friend class GILGuard;

  // Null for the main interpreter.
  std::shared_ptr<detail::InterpControl> sub_;
  int64_t id_ = -1;
  uint64_t generation_ = 0;
};

// The main interpreter from anywhere: `GILGuard
// gil(pyscope::MainInterpreter());` attaches the calling thread to the main
// interpreter also inside a sub-interpreter scope, and gives the
// sub-interpreter back at scope end. Same as InterpreterView::FromMain().
PYSCOPE_API InterpreterView MainInterpreter();

}  // namespace pyscope

#endif  // PYSCOPE_INTERPRETER_VIEW_H_
