// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// The attach and detach paths of the guards (GILGuard, AllowThreads,
// ThreadStateSwap) that their inline fast paths do not cover: borrowing an
// attachment pyscope did not make, re-attaching a parked thread state,
// attaching from cold through the gate, entering and leaving
// sub-interpreters, and the scope-end checks.
//
// Every function here attaches or detaches the calling thread by itself,
// which Clang's analysis cannot follow (docs/compile_time.md): they are
// marked ABSL_NO_THREAD_SAFETY_ANALYSIS.

#include "attach.h"

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "gate.h"
#include "interpreter_registry.h"
#include "misuse.h"
#include "platform.h"
#include "pyscope/detail/core.h"
#include "pyscope/diagnostics.h"
#include "thread_state_cache.h"

namespace pyscope::detail {

bool IsAttachedHere(Record& record, PyThreadState* tstate) {
  if (tstate == nullptr) return false;
  if (compat::kCurrentThreadStateIsThreadLocal) return true;
  if (tstate == record.tstate) return true;
  if (tstate == PyGILState_GetThisThreadState()) return true;
  if (ThreadStateCache::Get().Owns(record, tstate)) return true;
  // A state the host made by hand (PyThreadState_New) and attached here.
  return compat::CreatedOnThisThread(tstate);
}

namespace {

absl::Status Refuse(Scope& scope, Attachment* attachment, absl::Status why) {
  CloseScope(scope);
  attachment->mode = AttachMode::kFailed;
  attachment->interp = nullptr;
  return why;
}

absl::Status OutOfMemory() {
  return absl::ResourceExhaustedError(
      "pyscope: PyThreadState_New failed (out of memory)");
}

// Gives up `scope` on a thread that is about to end: the thread holds no
// GIL any more, leaves the sub-interpreter it was entering (`entered`), and
// the scope is closed so that the enclosing guards, destroyed by the same
// unwinding, find the levels in order.
void AbandonScope(const Scope& scope, InterpControl* entered) {
  Record& record = RecordOf(*scope.record);
  if (entered != nullptr) entered->Leave(&record);
  record.holding = false;
  record.tstate = scope.prev_tstate;
  --record.level;
}

// Ends the calling thread the way CPython's take_gil does for a thread that
// wants the GIL back after finalization started, but without touching the
// freed interpreter state first. The unwinding runs the destructors of the
// enclosing scopes.
[[noreturn]] void EndThreadAfterFinalization(const Scope& scope,
                                             InterpControl* entered,
                                             const char* guard) {
  Record& record = RecordOf(*scope.record);
  std::fprintf(stderr,
               "pyscope: ending thread %s: its %s scope tried to take the GIL "
               "back after the Python runtime was finalized (it was still "
               "inside a guard when the drain deadline expired).\n",
               DescribeThread(record).c_str(), guard);
  AbandonScope(scope, entered);
  platform::EndThisThread();
}

// CPython 3.9-3.13 end a thread that wants the GIL back after
// Py_FinalizeEx started (take_gil -> PyThread_exit_thread, a forced
// unwind), e.g. a Python daemon thread leaving an AllowThreads scope.
// Without this, the scope being re-attached would stay open on the record
// and every enclosing guard, destroyed by that unwinding, would report
// being destroyed out of order.
class AbandonScopeIfUnwound {
 public:
  AbandonScopeIfUnwound(const Scope& scope, InterpControl* entered)
      : scope_(scope), entered_(entered) {}
  ~AbandonScopeIfUnwound() {
    if (!returned_) AbandonScope(scope_, entered_);
  }
  void Returned() { returned_ = true; }
  AbandonScopeIfUnwound(const AbandonScopeIfUnwound&) = delete;
  AbandonScopeIfUnwound& operator=(const AbandonScopeIfUnwound&) = delete;

 private:
  const Scope& scope_;
  InterpControl* const entered_;
  bool returned_ = false;
};

// Re-attaches `tstate` on the calling thread through the gate, for `scope`
// (which entered the sub-interpreter `entered`, if any). Past the point of
// no return only thread states pyscope created for native threads are at
// risk (Py_FinalizeEx frees them): such a thread is ended instead. A Python
// thread's own state re-attaches as Py_END_ALLOW_THREADS would (CPython
// joins non-daemon threads, which needs exactly that, and parks daemon ones
// from 3.14, gh-87135) -- except where CPython would end the thread inside
// the attach call (before 3.14, once Py_FinalizeEx marked the runtime
// finalizing): pyscope ends it itself then, so that the scopes it unwinds
// through are closed. Once the runtime's states were freed, nobody
// re-attaches. The
// finalizing thread itself, in its exit callbacks, always gets the GIL
// back: Python works until it calls Py_FinalizeEx.
void Reattach(const Scope& scope, PyThreadState* tstate, const char* guard,
              InterpControl* entered = nullptr) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  Record& record = RecordOf(*scope.record);
  {
    Gate::Admission admission(record.slot);
    const bool lost = admission.Freed(record.scope_generation) ||
                      (admission.past_point_of_no_return() &&
                       (ThreadStateCache::Get().Owns(record, tstate) ||
                        compat::AttachWouldEndThread()));
    if (!lost || Gate::Get().IsFinalizer(record.slot)) {
      AbandonScopeIfUnwound unwound(scope, entered);
      PyEval_RestoreThread(tstate);
      unwound.Returned();
      return;
    }
  }
  EndThreadAfterFinalization(scope, entered, guard);
}

void Borrow(Scope& scope, PyThreadState* current, Attachment* attachment) {
  Record& record = RecordOf(*scope.record);
  if (scope.level == 1) record.scope_generation = Gate::Get().generation();
  record.holding = true;
  record.tstate = current;
  attachment->mode = AttachMode::kBorrowed;
}

void Hold(Scope& scope, PyThreadState* tstate, AttachMode mode,
          Attachment* attachment) {
  scope.record->holding = true;
  scope.record->tstate = tstate;
  attachment->mode = mode;
}

// Attaches from no thread state, through the gate: refused (with the scope
// closed) unless the runtime is running. `pick(generation)` chooses the
// thread state once the gate admitted the thread.
template <typename PickThreadState>
absl::Status AttachCold(Scope& scope, const SourceLocation& where,
                        Attachment* attachment,
                        PickThreadState pick) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  Record& record = RecordOf(*scope.record);
  Gate::Admission admission(record.slot);
  const Gate::State state = admission.state();
  if (state != Gate::State::kRunning) {
    return Refuse(scope, attachment, Gate::RefusalFor(state));
  }
  const uint64_t generation = admission.generation();
  PyThreadState* tstate = pick(generation);
  if (tstate == nullptr) return Refuse(scope, attachment, OutOfMemory());
  record.scope_generation = generation;
  record.slot.EnterColdScope(where);
  PyEval_RestoreThread(tstate);
  Hold(scope, tstate, AttachMode::kRestored, attachment);
  return absl::OkStatus();
}

// See compat::kAttachRebindsGilState: after a sub-interpreter scope that
// attached this thread (from cold, or under an AllowThreads), moves the
// thread's PyGILState binding from `sub_tstate` to `home` (the parked state
// the thread returns to) or, when null, to its main-interpreter state, by
// attaching that state for a moment. Skipped once finalization passed its
// point of no return (nothing may attach then; the runtime frees every
// state).
void RebindGilState(Record& record, PyThreadState* sub_tstate,
                    PyThreadState* home) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (!compat::kAttachRebindsGilState ||
      PyGILState_GetThisThreadState() != sub_tstate) {
    return;
  }
  Gate::Admission admission(record.slot);
  const uint64_t generation = admission.generation();
  if (admission.past_point_of_no_return() ||
      generation != record.scope_generation) {
    return;
  }
  if (home == nullptr) {
    home = ThreadStateCache::Get().FindOrCreate(
        record, Gate::Get().main_interpreter(), generation);
  }
  if (home != nullptr) {
    PyEval_RestoreThread(home);
    PyEval_SaveThread();
  }
}

}  // namespace

bool AttachSlow(Scope& scope, const SourceLocation& where,
                Attachment* attachment,
                absl::Status* error) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  Record& record = RecordOf(*scope.record);
  // 1. Already attached by something pyscope did not do (running Python
  //    code called us; the host holds a PyGILState, also one taken inside
  //    an AllowThreads scope, e.g. by pybind11's gil_scoped_acquire; the
  //    host attached a state of its own): borrow it.
  PyThreadState* current = compat::CurrentThreadStateUnchecked();
  if (IsAttachedHere(record, current)) {
    Borrow(scope, current, attachment);
    return true;
  }
  // 2. The enclosing scope's thread state is parked: by AllowThreads
  //    (Py_BLOCK_THREADS), or by code pyscope does not see that released
  //    the GIL inside a GILGuard scope (Py_BEGIN_ALLOW_THREADS,
  //    PyEval_SaveThread, pybind11's gil_scoped_release). Take it back for
  //    this scope and park it again at its end, as PyGILState_Ensure would.
  if (PyThreadState* parked = scope.prev_tstate; parked != nullptr) {
    Reattach(scope, parked, "GILGuard");
    Hold(scope, parked, AttachMode::kRestored, attachment);
    return true;
  }
  // 3. Cold: through the gate, with the thread's main-interpreter state.
  absl::Status status =
      AttachCold(scope, where, attachment, [&record](uint64_t generation) {
        return ThreadStateCache::Get().FindOrCreate(
            record, Gate::Get().main_interpreter(), generation);
      });
  if (status.ok()) return true;
  *error = std::move(status);
  return false;
}

namespace {

// The common entry: a thread with nothing attached and no parked state,
// whose shortcut holds its state for this interpreter (uid and epoch), while
// the runtime runs. Counts the thread in, attaches through the gate; false
// (nothing done) when any of that does not hold.
bool EnterCachedFast(Scope& scope, InterpControl* control,
                     const SourceLocation& where,
                     Attachment* attachment) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  Record& record = RecordOf(*scope.record);
  PyThreadState* const cached = record.sub_tstate;
  if (cached == nullptr || scope.prev_tstate != nullptr ||
      record.sub_uid != control->uid ||
      compat::CurrentThreadStateUnchecked() != nullptr) {
    return false;
  }
  control->entries.fetch_add(1, std::memory_order_seq_cst);
  if (control->phase.load(std::memory_order_seq_cst) != InterpControl::kOpen ||
      control->epoch.load(std::memory_order_acquire) != record.sub_epoch) {
    control->Leave(nullptr);
    return false;
  }
  AdmissionSlot& admission = record.admission;
  admission.attaching.store(1, std::memory_order_relaxed);
  AttachFence();
  if (gate_words.state.load(std::memory_order_relaxed) != kGateRunning ||
      gate_words.generation.load(std::memory_order_relaxed) !=
          control->generation) {
    admission.attaching.store(0, std::memory_order_release);
    control->Leave(nullptr);
    return false;
  }
  record.EnterControl(control);
  record.scope_generation = control->generation;
  admission.EnterColdScope(where);
  PyEval_RestoreThread(cached);
  admission.attaching.store(0, std::memory_order_release);
  record.holding = true;
  record.tstate = cached;
  attachment->mode = AttachMode::kRestored;
  attachment->interp = control;
  return true;
}

absl::Status EnterInterpreterSlow(
    Scope& scope, InterpControl* control, const SourceLocation& where,
    Attachment* attachment) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  Record& record = RecordOf(*scope.record);
  // (The enclosing scope may hold a state that code pyscope does not see
  // detached since: only what is attached now counts.)
  PyThreadState* current = compat::CurrentThreadStateUnchecked();
  const bool attached = IsAttachedHere(record, current);
  // A null `control` is the main interpreter (MainInterpreter(), an
  // InterpreterView of it): the same paths, without a control block to be
  // counted in by; the gate refuses it once the runtime is not running.
  PyInterpreterState* interp =
      control != nullptr ? control->interp.load(std::memory_order_acquire)
                         : Gate::Get().main_interpreter();
  if (interp == nullptr) {
    return Refuse(scope, attachment,
                  control != nullptr ? control->EndedError()
                                     : Gate::RefusalFor(Gate::Get().state()));
  }
  // 1. Already running in it on this thread: nested, or borrowed when
  //    Python code of this interpreter called us.
  if (attached && PyThreadState_GetInterpreter(current) == interp) {
    if (scope.prev_holding && current == record.tstate) {
      attachment->mode = AttachMode::kNested;
    } else {
      Borrow(scope, current, attachment);
    }
    return absl::OkStatus();
  }
  // 2. Counted in by the interpreter (not ending or ended); from here on
  //    it cannot end before the scope does.
  if (control != nullptr) {
    if (absl::Status entry = control->Enter(&record); !entry.ok()) {
      return Refuse(scope, attachment, std::move(entry));
    }
  }
  attachment->interp = control;
  ThreadStateCache& cache = ThreadStateCache::Get();
  // 3. Attached elsewhere (switch from it, and back at scope end), or
  //    inside a scope whose state is parked (enter without disturbing it):
  //    this thread's state for the interpreter.
  if (attached || scope.prev_tstate != nullptr) {
    PyThreadState* tstate =
        control != nullptr
            ? cache.ForSubInterpreter(record, *control,
                                      Gate::Get().generation())
            : cache.FindOrCreate(record, interp, Gate::Get().generation());
    if (tstate == nullptr) {
      if (control != nullptr) control->Leave(&record);
      return Refuse(scope, attachment, OutOfMemory());
    }
    // A switch detaches from the current interpreter first (releasing its
    // GIL): from 3.12 interpreters may have different GILs, so the GIL
    // follows the thread state.
    if (attached) PyEval_SaveThread();
    Reattach(scope, tstate, "GILGuard", control);
    Hold(scope, tstate,
         attached ? AttachMode::kSwitched : AttachMode::kRestored, attachment);
    attachment->switched_from = attached ? current : nullptr;
    return absl::OkStatus();
  }
  // 4. Cold, through the gate.
  absl::Status status =
      AttachCold(scope, where, attachment, [&](uint64_t generation) {
        return control != nullptr
                   ? cache.ForSubInterpreter(record, *control, generation)
                   : cache.FindOrCreate(record, interp, generation);
      });
  if (!status.ok() && control != nullptr) control->Leave(&record);
  return status;
}

}  // namespace

bool EnterInterpreter(Scope& scope, InterpControl* control,
                      const SourceLocation& where, Attachment* attachment,
                      absl::Status* error) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (control != nullptr &&
      EnterCachedFast(scope, control, where, attachment)) {
    return true;
  }
  absl::Status status = EnterInterpreterSlow(scope, control, where, attachment);
  if (status.ok()) return true;
  *error = std::move(status);
  return false;
}

void DetachSlow(const Scope& scope,
                const Attachment& attachment) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  Record& record = RecordOf(*scope.record);
  if (attachment.mode == AttachMode::kRestored) {
    // A thread that finalization ended while it waited for the GIL unwinds
    // through here without holding it: nothing to release.
    const bool lost = Gate::Get().past_point_of_no_return() &&
                      compat::CurrentThreadStateUnchecked() != record.tstate;
    if (!lost) PyEval_SaveThread();
    if (!lost && attachment.interp != nullptr &&
        attachment.interp->rebind_gilstate) {
      RebindGilState(record, record.tstate, scope.prev_tstate);
    }
    if (scope.prev_tstate == nullptr) record.slot.LeaveColdScope();
  } else if (attachment.mode == AttachMode::kSwitched) {
    PyEval_SaveThread();
  }
  if (attachment.interp != nullptr) attachment.interp->Leave(&record);
  if (attachment.mode == AttachMode::kSwitched) {
    Reattach(scope, attachment.switched_from, "GILGuard");
  }
  CloseScope(scope);
}

PyThreadState* DetachForAllowThreads(Scope& scope, const SourceLocation& where)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  Record& record = RecordOf(*scope.record);
  // Checked also inside a scope that holds the GIL: code pyscope does not
  // see may have released it since (Py_BEGIN_ALLOW_THREADS).
  if (!IsAttachedHere(record, compat::CurrentThreadStateUnchecked())) {
    ReportMisuse(Misuse::kAllowThreadsWithoutGil, GuardKind::kAllowThreads,
                 where,
                 "The calling thread does not hold the GIL, so there is "
                 "nothing to release. Create the AllowThreads inside a "
                 "GILGuard scope (or in code called from Python), and not "
                 "inside a raw Py_BEGIN_ALLOW_THREADS / PyEval_SaveThread "
                 "region or a pybind11 gil_scoped_release.");
    return nullptr;
  }
  if (!scope.prev_holding && scope.level == 1) {
    record.scope_generation = Gate::Get().generation();
  }
  PyThreadState* saved = PyEval_SaveThread();
  record.holding = false;
  record.tstate = saved;
  return saved;
}

void ReattachAfterAllowThreads(const Scope& scope, PyThreadState* saved) {
  if (saved != nullptr) Reattach(scope, saved, "AllowThreads");
  CloseScope(scope);
}

PyThreadState* SwapIn(Scope& scope, PyThreadState* target,
                      const SourceLocation& where)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  Record& record = RecordOf(*scope.record);
  if (target == nullptr) {
    ReportMisuse(Misuse::kSwapWithoutGil, GuardKind::kThreadStateSwap, where,
                 "The thread state to swap in is null. To detach the thread "
                 "for a scope, use AllowThreads.");
    return nullptr;
  }
  if (!IsAttachedHere(record, compat::CurrentThreadStateUnchecked())) {
    ReportMisuse(Misuse::kSwapWithoutGil, GuardKind::kThreadStateSwap, where,
                 "The calling thread does not hold the GIL; "
                 "PyThreadState_Swap requires it. Create the ThreadStateSwap "
                 "inside a GILGuard scope.");
    return nullptr;
  }
  PyThreadState* previous = PyThreadState_Swap(target);
  record.holding = true;
  record.tstate = target;
  return previous;
}

void SwapBack(const Scope& scope, PyThreadState* target,
              PyThreadState* previous,
              const SourceLocation& where) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (previous == nullptr) {  // the constructor reported a misuse
    CloseScope(scope);
    return;
  }
  if (compat::CurrentThreadStateUnchecked() != target) {
    ReportMisuse(Misuse::kSwapTargetLost, GuardKind::kThreadStateSwap, where,
                 "When the scope ended, the thread state it swapped in was no "
                 "longer current: it was deleted (PyThreadState_Clear + "
                 "PyThreadState_DeleteCurrent) or swapped out inside the "
                 "scope. The previous thread state was not restored.");
    CloseScope(scope);
    return;
  }
  PyThreadState_Swap(previous);
  CloseScope(scope);
}

bool CheckScopeEnd(const Scope& scope, GuardKind kind,
                   const SourceLocation& where) noexcept {
  ThreadRecord& here = ThisThread();
  if (&here != scope.record) {
    const Record& creator = RecordOf(*scope.record);
    const bool exited = creator.exited.load(std::memory_order_acquire);
    const std::string detail = absl::StrCat(
        "It was created on thread ", DescribeThread(creator),
        exited ? ", which has exited" : "",
        ". A guard must be destroyed on the thread that created it: keep it "
        "a local variable and never hand it (or a std::optional holding it) "
        "to another thread.");
    ReportMisuse(Misuse::kDestroyedOnOtherThread, kind, where, detail.c_str());
    return false;
  }
  const std::string detail = absl::StrCat(
      "It was scope number ", scope.level, " on this thread, but ",
      here.level - scope.level,
      " scope(s) opened after it were still live. Guards must end in the "
      "reverse order of their creation; keep each guard a local variable of "
      "the block it protects.");
  ReportMisuse(Misuse::kDestroyedOutOfOrder, kind, where, detail.c_str());
  return false;
}

}  // namespace pyscope::detail

namespace pyscope {

std::vector<AttachedThread> AttachedThreads() {
  std::vector<AttachedThread> result;
  for (const detail::Gate::InsideThread& inside :
       detail::Gate::Get().ThreadsInside()) {
    result.push_back(AttachedThread{inside.who.os_thread_id,
                                    detail::platform::ThreadName(inside.who),
                                    inside.site});
  }
  return result;
}

}  // namespace pyscope
