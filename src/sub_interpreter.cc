// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// SubInterpreter: creation that leaves the caller's thread state as it was,
// entry through the thread-state cache (attach.cc), and an end protocol
// that never reaches Py_EndInterpreter's fatal errors.

#include "pyscope/sub_interpreter.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "attach.h"
#include "gate.h"
#include "interpreter_registry.h"
#include "pyscope/exec.h"
#include "thread_state_cache.h"

namespace pyscope {
namespace detail {
namespace {

compat::InterpreterSettings SettingsOf(const SubInterpreterOptions& o) {
  compat::InterpreterSettings settings;
  settings.use_main_obmalloc = o.use_main_obmalloc;
  settings.allow_fork = o.allow_fork;
  settings.allow_exec = o.allow_exec;
  settings.allow_threads = o.allow_threads;
  settings.allow_daemon_threads = o.allow_daemon_threads;
  settings.check_multi_interp_extensions = o.check_multi_interp_extensions;
  settings.own_gil = o.gil == SubInterpreterOptions::Gil::kOwn;
  return settings;
}

bool IsLegacy(const SubInterpreterOptions& o) {
  const compat::InterpreterSettings settings = SettingsOf(o);
  const compat::InterpreterSettings legacy;
  return settings.use_main_obmalloc == legacy.use_main_obmalloc &&
         settings.allow_fork == legacy.allow_fork &&
         settings.allow_exec == legacy.allow_exec &&
         settings.allow_threads == legacy.allow_threads &&
         settings.allow_daemon_threads == legacy.allow_daemon_threads &&
         settings.check_multi_interp_extensions ==
             legacy.check_multi_interp_extensions &&
         settings.own_gil == legacy.own_gil;
}

// Step 1 of End: refuses new entries and waits up to the end deadline for
// the scopes on other threads to leave. OK to go on; *done when there is
// nothing to do (ended before).
// (The analysis cannot see control.mu held through std::unique_lock.)
absl::Status CloseToEntries(InterpControl& control, Record& record,
                            bool* done) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  std::unique_lock<std::mutex> lock(control.mu.native());
  if (control.phase.load(std::memory_order_acquire) == InterpControl::kEnded) {
    *done = true;
    return absl::OkStatus();
  }
  if (control.end_in_progress) {
    return absl::UnavailableError(
        absl::StrCat("pyscope: sub-interpreter ", control.id,
                     " is being ended on another thread"));
  }
  if (record.IsInside(&control)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "pyscope: SubInterpreter::End called on a thread that is inside a "
        "scope of sub-interpreter ",
        control.id, "; leave the scope first"));
  }
  control.end_in_progress = true;
  control.phase.store(InterpControl::kEnding, std::memory_order_seq_cst);
  auto idle = [&control] {
    return control.entries.load(std::memory_order_seq_cst) == 0;
  };
  if (control.end_deadline == absl::InfiniteDuration()) {
    control.idle.wait(lock, idle);
  } else if (!control.idle.wait_until(
                 lock,
                 std::chrono::steady_clock::now() +
                     absl::ToChronoNanoseconds(control.end_deadline),
                 idle)) {
    control.end_in_progress = false;
    const int entries = control.entries.load(std::memory_order_relaxed);
    // The cache's lock is taken without control.mu (thread exit takes them
    // in the other order).
    lock.unlock();
    const std::vector<std::string> inside =
        ThreadStateCache::Get().DescribeThreadsInside(control);
    return absl::DeadlineExceededError(absl::StrCat(
        "pyscope: sub-interpreter ", control.id, " was not ended: after ",
        absl::FormatDuration(control.end_deadline), " ", entries,
        " scope(s) were still inside it (threads: ",
        inside.empty() ? "not listed" : absl::StrJoin(inside, ", "),
        "). New entries stay refused; call End() again once they leave."));
  }
  return absl::OkStatus();
}

// Marks the end attempt's outcome: ended, or reopened for entries.
void FinishEnd(InterpControl& control, bool ended) {
  CoreLock lock(&control.mu);
  control.end_in_progress = false;
  if (ended) {
    control.interp.store(nullptr, std::memory_order_release);
    control.phase.store(InterpControl::kEnded, std::memory_order_seq_cst);
  } else {
    control.phase.store(InterpControl::kOpen, std::memory_order_seq_cst);
  }
}

// Where the ending thread was, to come back to it exactly.
struct Return {
  PyThreadState* previous;  // attached before End, or null
  PyThreadState* home;      // attached after End (then detached if
                            // `previous` is null)
};

// Step 3: attaches the calling thread to the interpreter to end, with its
// own cached state for it if it has one, else a new one. Reusing matters:
// if this thread first imported threading there, its thread state holds
// threading's main-thread sentinel lock, and Py_EndInterpreter's
// threading._shutdown() asserts the lock is still held; deleting the state
// first would release it.
absl::Status AttachForEnding(InterpControl& control, Record& record,
                             Return* back, PyThreadState** ending,
                             bool* keeps_gilstate)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  ThreadStateCache& cache = ThreadStateCache::Get();
  const uint64_t generation = Gate::Get().generation();
  back->previous = AttachedHere(record);
  back->home = back->previous != nullptr
                   ? back->previous
                   : cache.FindOrCreate(record, Gate::Get().main_interpreter(),
                                        generation);
  PyInterpreterState* interp = control.interp.load(std::memory_order_acquire);
  PyThreadState* tstate =
      cache.TakeOwn(record, interp, generation, keeps_gilstate);
  if (tstate == nullptr) tstate = PyThreadState_New(interp);
  if (back->home == nullptr || tstate == nullptr) {
    return absl::ResourceExhaustedError(
        "pyscope: PyThreadState_New failed (out of memory)");
  }
  if (back->previous != nullptr) PyEval_SaveThread();
  {
    Gate::Admission admission(record.slot);
    if (!admission.past_point_of_no_return()) {
      PyEval_RestoreThread(tstate);
      *ending = tstate;
      return absl::OkStatus();
    }
  }
  if (back->previous != nullptr) PyEval_RestoreThread(back->previous);
  return absl::UnavailableError(
      "pyscope: the runtime is past finalization's point of no return");
}

// Runs threading._shutdown() if the interpreter imported threading, as
// Py_EndInterpreter's wait_for_thread_shutdown would, but before pyscope
// checks for leftover thread states: it runs threading's exit hooks (which
// stop concurrent.futures workers; joining threads without them waits
// forever) and joins the non-daemon threads.
void JoinPythonThreads() PYSCOPE_REQUIRES_GIL {
  PyObject* modules = PyImport_GetModuleDict();  // borrowed
  PyObject* threading = PyDict_GetItemString(modules, "threading");
  if (threading == nullptr) return;
  PyObject* result = PyObject_CallMethod(threading, "_shutdown", nullptr);
  if (result == nullptr) {
    PyErr_Clear();
  } else {
    Py_DECREF(result);
  }
}

// Step 5, when thread states pyscope did not create remain: detaches,
// keeping the ending state as this thread's cached one (it may be the
// interpreter's first thread state, which CPython 3.12 embeds in the
// interpreter and cannot re-create after deleting it: "thread state
// already initialized" at the next PyThreadState_New), and goes back.
absl::Status GiveUpEnding(InterpControl& control, Record& record,
                          const Return& back, PyThreadState* ending,
                          bool keeps_gilstate,
                          int foreign) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  PyEval_SaveThread();
  ThreadStateCache::Get().Adopt(
      record, control.interp.load(std::memory_order_acquire), ending,
      Gate::Get().generation(), keeps_gilstate);
  if (back.previous != nullptr) PyEval_RestoreThread(back.previous);
  return absl::FailedPreconditionError(absl::StrCat(
      "pyscope: sub-interpreter ", control.id, " was not ended: it still has ",
      foreign,
      " thread state(s) that pyscope did not create (daemon threads of the "
      "threading module, or states made with PyThreadState_New); "
      "Py_EndInterpreter would abort the process with \"not the last "
      "thread\". Stop those threads and call End() again."));
}

// Step 6: Py_EndInterpreter, then back to where the thread was.
void EndAndGoBack(InterpControl& control, const Return& back,
                  PyThreadState* ending,
                  bool keeps_gilstate) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  // threading._shutdown() ran in step 4; Py_EndInterpreter would run it
  // again, and on 3.12 a second run on the thread that imported threading
  // fails ("assert tlock is not None", printed as an ignored exception).
  if (PyDict_DelItemString(PyImport_GetModuleDict(), "threading") != 0) {
    PyErr_Clear();
  }
  // (Its deletion must not clear this thread's binding.)
  if (keeps_gilstate) compat::KeepGilStateBinding(ending, false);
  Py_EndInterpreter(ending);
  // Py_EndInterpreter leaves no thread state current. Before 3.12 the
  // (shared) GIL is still held, from 3.12 none is: PyThreadState_Swap is
  // the one call that is right in both cases (it takes the GIL of the
  // state it installs only when none is held).
  PyThreadState_Swap(back.home);
  if (back.previous == nullptr) PyEval_SaveThread();
  InterpreterRegistry::Get().Remove(&control);
}

}  // namespace

// The protocol of SubInterpreter::End (sub_interpreter.h), step by step.
// Detaches from and re-attaches to interpreters by itself, which the
// analysis cannot follow.
absl::Status EndInterpreter(InterpControl& control)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  Record& record = ThisRecord();
  // 1. Refuse new entries; wait for the scopes on other threads.
  bool done = false;
  absl::Status status = CloseToEntries(control, record, &done);
  if (done || !status.ok()) return status;
  // 2. A finalization of its runtime freed it already.
  if (control.generation != Gate::Get().generation()) {
    FinishEnd(control, /*ended=*/true);
    return absl::OkStatus();
  }
  // 3. Attach to it on this thread.
  Return back{};
  PyThreadState* ending = nullptr;
  bool keeps_gilstate = false;
  status = AttachForEnding(control, record, &back, &ending, &keeps_gilstate);
  if (!status.ok()) {
    FinishEnd(control, /*ended=*/false);
    return status;
  }
  // 4. Other threads' cached states go first: if one of those threads
  //    imported threading here, threading._shutdown() waits for its state's
  //    sentinel lock, which only deleting the state releases. (Their
  //    shortcuts to those states stop at the new epoch.) Then join the
  //    interpreter's Python threads.
  ThreadStateCache& cache = ThreadStateCache::Get();
  const uint64_t generation = Gate::Get().generation();
  PyInterpreterState* interp = control.interp.load(std::memory_order_acquire);
  control.epoch.fetch_add(1, std::memory_order_acq_rel);
  cache.DeleteFor(interp, ending, generation);
  JoinPythonThreads();
  // 5. Refuse, instead of CPython's fatal "not the last thread", while
  //    thread states pyscope did not create remain.
  if (const int foreign = cache.CountForeign(interp, ending); foreign > 0) {
    status =
        GiveUpEnding(control, record, back, ending, keeps_gilstate, foreign);
    FinishEnd(control, /*ended=*/false);
    return status;
  }
  cache.DeleteFor(interp, ending, generation);
  // 6. End it and go back.
  EndAndGoBack(control, back, ending, keeps_gilstate);
  FinishEnd(control, /*ended=*/true);
  return absl::OkStatus();
}

absl::Status EndAllInterpreters() {
  const std::vector<std::shared_ptr<InterpControl>> interps =
      InterpreterRegistry::Get().Live();
  absl::Status result;
  // Newest first: an interpreter created from inside another ends first.
  for (auto it = interps.rbegin(); it != interps.rend(); ++it) {
    absl::Status status = EndInterpreter(**it);
    if (!status.ok() && result.ok()) result = status;
  }
  return result;
}

}  // namespace detail

SubInterpreterOptions SubInterpreterOptions::Default() {
  return SubInterpreterOptions();
}

SubInterpreterOptions SubInterpreterOptions::Legacy() {
  SubInterpreterOptions options;
  options.check_multi_interp_extensions = false;
  return options;
}

SubInterpreterOptions SubInterpreterOptions::Isolated() {
  SubInterpreterOptions options;
  options.use_main_obmalloc = false;
  options.allow_fork = false;
  options.allow_exec = false;
  options.allow_threads = true;
  options.allow_daemon_threads = false;
  options.check_multi_interp_extensions = true;
  options.gil = Gil::kOwn;
  options.pygilstate_follows_scope = false;
  return options;
}

absl::Status ValidateSubInterpreterOptions(const SubInterpreterOptions& o) {
  if (o.gil != SubInterpreterOptions::Gil::kShared &&
      o.gil != SubInterpreterOptions::Gil::kOwn) {
    return absl::InvalidArgumentError(absl::StrCat(
        "pyscope: SubInterpreterOptions::gil has the invalid value ",
        static_cast<int>(o.gil), " (use Gil::kShared or Gil::kOwn)"));
  }
  if (!detail::compat::kHasPerInterpreterGil && !detail::IsLegacy(o)) {
    return absl::UnimplementedError(absl::StrCat(
        "pyscope: this CPython (", PY_MAJOR_VERSION, ".", PY_MINOR_VERSION,
        ") creates sub-interpreters only with the legacy settings "
        "(SubInterpreterOptions::Legacy()); ",
        o.gil == SubInterpreterOptions::Gil::kOwn
            ? "an own GIL (PEP 684) needs CPython 3.12 or newer"
            : "PyInterpreterConfig settings need CPython 3.12 or newer"));
  }
  if (!detail::compat::kSubInterpretersLoadSinglePhaseModules &&
      !o.check_multi_interp_extensions) {
    return absl::UnimplementedError(
        "pyscope: the free-threaded build of CPython does not let "
        "sub-interpreters load single-phase init extension modules "
        "(gh-117649): check_multi_interp_extensions = false, as in "
        "SubInterpreterOptions::Legacy(), needs a build with a GIL; use "
        "SubInterpreterOptions::Default()");
  }
  if (!o.use_main_obmalloc && !o.check_multi_interp_extensions) {
    return absl::InvalidArgumentError(
        "pyscope: use_main_obmalloc = false requires "
        "check_multi_interp_extensions = true (single-phase init extension "
        "modules would leak objects between allocators; CPython's "
        "init_interp_settings refuses it)");
  }
  if (o.gil == SubInterpreterOptions::Gil::kOwn && o.use_main_obmalloc) {
    return absl::InvalidArgumentError(
        "pyscope: an own GIL requires use_main_obmalloc = false (the main "
        "interpreter's object allocator is protected by the main GIL only)");
  }
  if (o.end_deadline < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("pyscope: end_deadline is negative (",
                     absl::FormatDuration(o.end_deadline), ")"));
  }
  return absl::OkStatus();
}

SubInterpreter::SubInterpreter()
    : SubInterpreter(SubInterpreterOptions::Default()) {}

SubInterpreter::SubInterpreter(const SubInterpreterOptions& options)
    : options_(options) {
  absl::Status status = CreateInterpreter();
  if (!status.ok()) throw Error(std::move(status));
}

SubInterpreter::SubInterpreter(Uncreated, const SubInterpreterOptions& options)
    : options_(options) {}

absl::StatusOr<std::unique_ptr<SubInterpreter>> SubInterpreter::Create(
    const SubInterpreterOptions& options) {
  std::unique_ptr<SubInterpreter> interpreter(
      new SubInterpreter(Uncreated{}, options));
  absl::Status status = interpreter->CreateInterpreter();
  if (!status.ok()) return status;
  return interpreter;
}

absl::Status SubInterpreter::CreateInterpreter() {
  // Checked before CPython is called: the caller's state stays untouched.
  absl::Status status = ValidateSubInterpreterOptions(options_);
  if (!status.ok()) return status;

  GILGuard gil(std::nothrow);  // the caller's interpreter, else the main one
  if (!gil.ok()) return gil.status();
  PyThreadState* before = detail::compat::CurrentThreadStateUnchecked();
  PyThreadState* created = nullptr;
  PyStatus result =
      detail::compat::NewInterpreter(detail::SettingsOf(options_), &created);
  if (PyStatus_Exception(result)) {
    // 3.12's Py_NewInterpreterFromConfig can fail with the caller detached.
    if (detail::compat::CurrentThreadStateUnchecked() != before) {
      if (detail::compat::kSwapSwitchesGil) {
        PyEval_RestoreThread(before);
      } else {
        PyThreadState_Swap(before);
      }
    }
    if (PyErr_Occurred() != nullptr) PyErr_Clear();
    return absl::InternalError(absl::StrCat(
        "pyscope: creating the sub-interpreter failed",
        result.func != nullptr ? absl::StrCat(" in ", result.func) : "", ": ",
        result.err_msg != nullptr ? result.err_msg : "unknown error"));
  }
  PyInterpreterState* interp = PyThreadState_GetInterpreter(created);
  id_ = PyInterpreterState_GetID(interp);
  // Back to exactly where the caller was (3.12+: also back to its GIL, and
  // this thread's PyGILState binding back to `before`).
  PyThreadState_Swap(before);

  const uint64_t generation = detail::Gate::Get().generation();
  detail::InterpreterRegistry& registry = detail::InterpreterRegistry::Get();
  control_ = std::make_shared<detail::InterpControl>();
  control_->id = id_;
  control_->generation = generation;
  control_->uid = registry.NextUid();
  control_->end_deadline = options_.end_deadline;
  control_->rebind_gilstate = options_.pygilstate_follows_scope;
  control_->interp.store(interp, std::memory_order_release);
  detail::ThreadStateCache::Get().Adopt(
      detail::ThisRecord(), interp, created, generation,
      !control_->rebind_gilstate && detail::compat::kCanKeepGilStateBinding);
  registry.Add(control_);
  return absl::OkStatus();
}

SubInterpreter::~SubInterpreter() {
  if (control_ == nullptr) return;
  absl::Status status = End();
  if (!status.ok()) {
    std::fprintf(stderr, "pyscope: ~SubInterpreter: %s\n",
                 status.ToString().c_str());
  }
}

absl::Status SubInterpreter::End() {
  if (control_ == nullptr) return absl::OkStatus();
  return detail::EndInterpreter(*control_);
}

bool SubInterpreter::alive() const {
  if (control_ == nullptr) return false;
  return control_->phase.load(std::memory_order_acquire) !=
         detail::InterpControl::kEnded;
}

PyInterpreterState* SubInterpreter::interpreter_state() const {
  if (control_ == nullptr) return nullptr;
  return control_->interp.load(std::memory_order_acquire);
}

GILGuard::GILGuard(SubInterpreter& interpreter, SourceLocation where)
    : where_(where) {
  Enter(interpreter.control_.get());
  if (attachment_.mode == detail::AttachMode::kFailed) throw Error(status_);
}

GILGuard::GILGuard(SubInterpreter& interpreter, const std::nothrow_t&,
                   SourceLocation where)
    : where_(where) {
  Enter(interpreter.control_.get());
}

void SubInterpreter::Exec(std::string_view code) {
  GILGuard gil(*this);
  pyscope::Exec(code);
}

absl::Status SubInterpreter::TryExec(std::string_view code) {
  GILGuard gil(*this, std::nothrow);
  if (!gil.ok()) return gil.status();
  return pyscope::TryExec(code);
}

}  // namespace pyscope
