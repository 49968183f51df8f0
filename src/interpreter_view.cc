// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// InterpreterView: weak handles to interpreters, and GILGuard through them.
// A view of a sub-interpreter shares its control block (which outlives the
// interpreter and says whether it is ending or ended); a view of the main
// interpreter is the runtime generation it was taken in.

#include "pyscope/interpreter_view.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "attach.h"
#include "gate.h"
#include "interpreter_registry.h"
#include "pyscope/gil.h"
#include "pyscope/sub_interpreter.h"
#include "thread_state_cache.h"

namespace pyscope {
namespace {

absl::Status EmptyError() {
  return absl::FailedPreconditionError(
      "pyscope: the InterpreterView is empty (it refers to no interpreter)");
}

absl::Status StaleError(const InterpreterView& view, uint64_t now) {
  return absl::FailedPreconditionError(absl::StrCat(
      "pyscope: the InterpreterView refers to interpreter ", view.id(),
      " of runtime generation ", view.generation(),
      ", which was finalized; the runtime now running is generation ", now,
      " (take a new view)"));
}

// The refusal for a view whose runtime is not the running one, or OK.
absl::Status CheckGeneration(const InterpreterView& view) {
  const detail::Gate& gate = detail::Gate::Get();
  const detail::Gate::State state = gate.state();
  const uint64_t now = gate.generation();
  if (view.generation() == now && state == detail::Gate::State::kRunning) {
    return absl::OkStatus();
  }
  // The generation advances at Open and at Finish: the view's runtime is
  // finalizing (same generation), finalized (next generation, no runtime
  // running), or another runtime is running.
  if (state == detail::Gate::State::kRunning) return StaleError(view, now);
  if (view.generation() == now) {
    return absl::UnavailableError(
        absl::StrCat("pyscope: cannot attach to interpreter ", view.id(),
                     ": its runtime is being finalized"));
  }
  return absl::UnavailableError(
      absl::StrCat("pyscope: cannot attach to interpreter ", view.id(),
                   ": its runtime has been finalized"));
}

}  // namespace

InterpreterView InterpreterView::FromMain() {
  InterpreterView view;
  const detail::Gate& gate = detail::Gate::Get();
  // Read the generation around the state, so that a view is never made of
  // a runtime that finalized in between.
  const uint64_t generation = gate.generation();
  if (gate.state() != detail::Gate::State::kRunning ||
      gate.generation() != generation) {
    return view;
  }
  view.id_ = 0;
  view.generation_ = generation;
  return view;
}

InterpreterView InterpreterView::Of(const SubInterpreter& interpreter) {
  InterpreterView view;
  if (interpreter.control_ == nullptr) return view;
  view.sub_ = interpreter.control_;
  view.id_ = interpreter.control_->id;
  view.generation_ = interpreter.control_->generation;
  return view;
}

absl::StatusOr<InterpreterView> InterpreterView::FromCurrent() {
  detail::Record& record = detail::ThisRecord();
  PyThreadState* current = detail::AttachedHere(record);
  if (current == nullptr) {
    return absl::FailedPreconditionError(
        "pyscope: InterpreterView::FromCurrent: the calling thread is not "
        "attached to an interpreter");
  }
  PyInterpreterState* interp = PyThreadState_GetInterpreter(current);
  if (interp == detail::Gate::Get().main_interpreter()) return FromMain();
  for (const std::shared_ptr<detail::InterpControl>& control :
       detail::InterpreterRegistry::Get().Live()) {
    if (control->interp != interp) continue;
    InterpreterView view;
    view.sub_ = control;
    view.id_ = control->id;
    view.generation_ = control->generation;
    return view;
  }
  return absl::NotFoundError(absl::StrCat(
      "pyscope: InterpreterView::FromCurrent: interpreter ",
      PyInterpreterState_GetID(interp),
      " was not created by pyscope::SubInterpreter; pyscope cannot tell when "
      "it ends"));
}

absl::Status InterpreterView::Check() const {
  if (empty()) return EmptyError();
  if (absl::Status status = CheckGeneration(*this); !status.ok()) {
    return status;
  }
  if (sub_ == nullptr) return absl::OkStatus();
  const int phase = sub_->phase.load(std::memory_order_acquire);
  if (phase == detail::InterpControl::kEnded ||
      sub_->interp.load(std::memory_order_acquire) == nullptr) {
    return sub_->EndedError();
  }
  if (phase == detail::InterpControl::kEnding) {
    return absl::UnavailableError(
        absl::StrCat("pyscope: sub-interpreter ", id_,
                     " is ending; new entries are refused"));
  }
  return absl::OkStatus();
}

InterpreterView MainInterpreter() { return InterpreterView::FromMain(); }

GILGuard::GILGuard(const InterpreterView& view, SourceLocation where)
    : GILGuard(view, std::nothrow, where) {
  if (attachment_.mode == detail::AttachMode::kFailed) throw Error(status_);
}

GILGuard::GILGuard(const InterpreterView& view, const std::nothrow_t&,
                   SourceLocation where)
    : where_(where) {
  if (view.empty()) {
    status_ = EmptyError();
    return;
  }
  if (absl::Status status = CheckGeneration(view); !status.ok()) {
    status_ = std::move(status);
    return;
  }
  Enter(view.sub_.get());
  if (attachment_.mode == detail::AttachMode::kFailed) return;
  // Attached (and so counted by the drain, or inside a scope that is): the
  // runtime cannot have finished since. If it finished and a new one
  // started between the check above and the attachment, this is the new
  // runtime's interpreter, not the view's: give it back.
  const uint64_t now = detail::Gate::Get().generation();
  if (now != view.generation()) {
    if (attachment_.mode == detail::AttachMode::kNested) {
      --scope_.record->level;
    } else {
      detail::DetachSlow(scope_, attachment_);
    }
    attachment_ = detail::Attachment{};
    status_ = StaleError(view, now);
  }
}

}  // namespace pyscope
