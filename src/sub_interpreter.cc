// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// SubInterpreter: creation that leaves the caller's thread state as it was,
// entry through the thread-state cache (src/core.cc), and an end protocol
// that never reaches Py_EndInterpreter's fatal errors.

#include "pyscope/sub_interpreter.h"

#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core_internal.h"

namespace pyscope {
namespace detail {
namespace {

bool IsLegacy(const SubInterpreterOptions& o) {
  const SubInterpreterOptions legacy = SubInterpreterOptions::Legacy();
  return o.use_main_obmalloc == legacy.use_main_obmalloc &&
         o.allow_fork == legacy.allow_fork &&
         o.allow_exec == legacy.allow_exec &&
         o.allow_threads == legacy.allow_threads &&
         o.allow_daemon_threads == legacy.allow_daemon_threads &&
         o.check_multi_interp_extensions ==
             legacy.check_multi_interp_extensions &&
         o.gil == legacy.gil;
}

// Creates the interpreter with the calling thread attached (as `before`);
// on return the new interpreter's first thread state is current.
PyThreadState* NewInterpreter(const SubInterpreterOptions& options,
                              absl::Status* status) PYSCOPE_REQUIRES_GIL {
  PyThreadState* created = nullptr;
#if PY_VERSION_HEX >= 0x030C0000
  PyInterpreterConfig config = {};
  config.use_main_obmalloc = options.use_main_obmalloc ? 1 : 0;
  config.allow_fork = options.allow_fork ? 1 : 0;
  config.allow_exec = options.allow_exec ? 1 : 0;
  config.allow_threads = options.allow_threads ? 1 : 0;
  config.allow_daemon_threads = options.allow_daemon_threads ? 1 : 0;
  config.check_multi_interp_extensions =
      options.check_multi_interp_extensions ? 1 : 0;
  config.gil = options.gil == SubInterpreterOptions::Gil::kOwn
                   ? PyInterpreterConfig_OWN_GIL
                   : PyInterpreterConfig_SHARED_GIL;
  PyStatus result = Py_NewInterpreterFromConfig(&created, &config);
  if (PyStatus_Exception(result)) {
    *status = absl::InternalError(absl::StrCat(
        "pyscope: Py_NewInterpreterFromConfig failed",
        result.func != nullptr ? absl::StrCat(" in ", result.func) : "", ": ",
        result.err_msg != nullptr ? result.err_msg : "unknown error"));
    return nullptr;
  }
#else
  (void)options;
  created = Py_NewInterpreter();
  if (created == nullptr) {
    *status = absl::InternalError("pyscope: Py_NewInterpreter failed");
  }
#endif
  return created;
}

// Counts the thread states of `interp` other than `keep` that pyscope does
// not own (daemon threads, states created by hand). Requires `interp`'s GIL.
int ForeignThreadStates(InterpControl& control, PyThreadState* keep)
    PYSCOPE_REQUIRES_GIL {
  Core& core = GetCore();
  std::vector<PyThreadState*> ours;
  {
    CoreLock lock(&core.mu);
    for (ThreadRecord* record : core.records) {
      RecordImpl& impl = ImplOf(*record);
      CoreLock owned_lock(&impl.mu);
      for (const OwnedThreadState& owned : impl.owned) {
        if (owned.interp == control.interp) ours.push_back(owned.tstate);
      }
    }
    for (const OrphanThreadState& orphan : core.orphans) {
      if (orphan.interp == control.interp) ours.push_back(orphan.tstate);
    }
  }
  int foreign = 0;
  for (PyThreadState* t = PyInterpreterState_ThreadHead(control.interp);
       t != nullptr; t = PyThreadState_Next(t)) {
    if (t == keep) continue;
    if (std::find(ours.begin(), ours.end(), t) == ours.end()) ++foreign;
  }
  return foreign;
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

std::string DescribeActive(InterpControl& control)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(control.mu) {
  std::vector<std::string> threads;
  for (ThreadRecord* record : control.active) {
    threads.push_back(DescribeThread(*record));
  }
  return absl::StrJoin(threads, ", ");
}

// Removes and returns the calling thread's cached state for `interp`.
PyThreadState* TakeOwnThreadState(ThreadRecord& record,
                                  PyInterpreterState* interp) {
  RecordImpl& impl = ImplOf(record);
  const uint64_t generation = GetCore().generation.load();
  CoreLock lock(&impl.mu);
  for (auto it = impl.owned.begin(); it != impl.owned.end(); ++it) {
    if (it->interp == interp && it->generation == generation) {
      PyThreadState* tstate = it->tstate;
      impl.owned.erase(it);
      return tstate;
    }
  }
  return nullptr;
}

}  // namespace

// Detaches from and re-attaches to interpreters by itself (SaveThread,
// RestoreThread, Py_EndInterpreter), which the analysis cannot follow.
absl::Status EndInterpreter(InterpControl& control)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  Core& core = GetCore();
  ThreadRecord& record = ThisThread();
  {
    std::unique_lock<std::mutex> lock(control.mu.native());
    if (control.ended) return absl::OkStatus();
    if (control.end_in_progress) {
      return absl::UnavailableError(absl::StrCat(
          "pyscope: sub-interpreter ", control.id,
          " is being ended on another thread"));
    }
    if (std::find(control.active.begin(), control.active.end(), &record) !=
        control.active.end()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "pyscope: SubInterpreter::End called on a thread that is inside a "
          "scope of sub-interpreter ",
          control.id, "; leave the scope first"));
    }
    control.ending = true;
    control.end_in_progress = true;
    // Wait for scopes on other threads to leave.
    const auto deadline = std::chrono::steady_clock::now() +
                          absl::ToChronoNanoseconds(control.end_deadline);
    // (The lambda runs with control.mu held by `lock`; the analysis cannot
    // see through std::unique_lock.)
    if (!control.idle.wait_until(
            lock, deadline,
            [&control]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
              return control.active.empty();
            })) {
      control.end_in_progress = false;
      return absl::DeadlineExceededError(absl::StrCat(
          "pyscope: sub-interpreter ", control.id, " was not ended: after ",
          absl::FormatDuration(control.end_deadline),
          " these threads were still inside it: ", DescribeActive(control),
          ". New entries stay refused; call End() again once they leave."));
    }
  }
  auto finish = [&control](bool ended) {
    CoreLock lock(&control.mu);
    control.end_in_progress = false;
    if (ended) {
      control.ended = true;
      control.interp = nullptr;
    } else {
      control.ending = false;
    }
  };
  if (control.generation != core.generation.load(std::memory_order_acquire)) {
    finish(true);  // freed by the finalization of its runtime
    return absl::OkStatus();
  }

  // Where the calling thread is now, to come back to it exactly.
  PyThreadState* current = compat::CurrentThreadStateUnchecked();
  PyThreadState* previous = nullptr;
  if (record.holding) {
    previous = record.tstate;
  } else if (current != nullptr &&
             (compat::kCurrentThreadStateIsThreadLocal ||
              current == PyGILState_GetThisThreadState())) {
    previous = current;
  }
  const uint64_t generation = core.generation.load(std::memory_order_acquire);
  PyThreadState* home =
      previous != nullptr ? previous
                          : ThreadStateFor(record, core.main_interp, generation);
  // End with this thread's own cached state for the interpreter if it has
  // one, else a new one. Reusing matters: if this thread first imported
  // threading there, its thread state holds threading's main-thread sentinel
  // lock, and Py_EndInterpreter's threading._shutdown() asserts the lock is
  // still held; deleting the state first would release it.
  PyThreadState* fresh = TakeOwnThreadState(record, control.interp);
  if (fresh == nullptr) fresh = PyThreadState_New(control.interp);
  if (home == nullptr || fresh == nullptr) {
    finish(false);
    return absl::ResourceExhaustedError(
        "pyscope: PyThreadState_New failed (out of memory)");
  }
  if (previous != nullptr) PyEval_SaveThread();
  record.attaching.store(1, std::memory_order_seq_cst);
  if (core.hard.load(std::memory_order_seq_cst)) {
    record.attaching.store(0, std::memory_order_release);
    if (previous != nullptr) PyEval_RestoreThread(previous);
    finish(false);
    return absl::UnavailableError(
        "pyscope: the runtime is past finalization's point of no return");
  }
  PyEval_RestoreThread(fresh);
  record.attaching.store(0, std::memory_order_release);

  // Other threads' cached states go first: if one of those threads imported
  // threading here, threading._shutdown() waits for its state's sentinel
  // lock, which only deleting the state releases.
  DeleteCachedThreadStates(control.interp, fresh);
  JoinPythonThreads();
  const int foreign = ForeignThreadStates(control, fresh);
  if (foreign > 0) {
    // Keep `fresh` as this thread's cached state: it may be the
    // interpreter's first thread state, which CPython 3.12 embeds in the
    // interpreter and cannot re-create after deleting it ("thread state
    // already initialized" at the next PyThreadState_New).
    PyEval_SaveThread();
    AdoptThreadState(record, control.interp, fresh);
    if (previous != nullptr) PyEval_RestoreThread(previous);
    finish(false);
    return absl::FailedPreconditionError(absl::StrCat(
        "pyscope: sub-interpreter ", control.id, " was not ended: it still has ",
        foreign,
        " thread state(s) that pyscope did not create (daemon threads of the "
        "threading module, or states made with PyThreadState_New); "
        "Py_EndInterpreter would abort the process with \"not the last "
        "thread\". Stop those threads and call End() again."));
  }
  DeleteCachedThreadStates(control.interp, fresh);
  // threading._shutdown() ran above; Py_EndInterpreter would run it again,
  // and on 3.12 a second run on the thread that imported threading fails
  // ("assert tlock is not None", printed as an ignored exception).
  if (PyDict_DelItemString(PyImport_GetModuleDict(), "threading") != 0) {
    PyErr_Clear();
  }
  PyInterpreterState* interp = control.interp;
  Py_EndInterpreter(fresh);
  // Py_EndInterpreter leaves no thread state current. Before 3.12 the
  // (shared) GIL is still held, from 3.12 none is: PyThreadState_Swap is
  // the one call that is right in both cases (it takes the GIL of the
  // state it installs only when none is held).
  PyThreadState_Swap(home);
  if (previous == nullptr) PyEval_SaveThread();
  {
    CoreLock lock(&core.mu);
    auto& interps = core.interps;
    interps.erase(std::remove_if(interps.begin(), interps.end(),
                                 [interp](const auto& c) {
                                   return c->interp == interp;
                                 }),
                  interps.end());
  }
  finish(true);
  return absl::OkStatus();
}

absl::Status EndAllInterpreters() {
  std::vector<std::shared_ptr<InterpControl>> interps;
  {
    Core& core = GetCore();
    CoreLock lock(&core.mu);
    interps = core.interps;
  }
  absl::Status result;
  // Newest first: an interpreter created from inside another ends first.
  for (auto it = interps.rbegin(); it != interps.rend(); ++it) {
    absl::Status status = EndInterpreter(**it);
    if (!status.ok() && result.ok()) result = status;
  }
  return result;
}

}  // namespace detail

SubInterpreterOptions SubInterpreterOptions::Legacy() {
  return SubInterpreterOptions();
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
  return options;
}

absl::Status ValidateSubInterpreterOptions(const SubInterpreterOptions& o) {
  if (!detail::compat::kHasPerInterpreterGil && !detail::IsLegacy(o)) {
    return absl::UnimplementedError(absl::StrCat(
        "pyscope: this CPython (", PY_MAJOR_VERSION, ".", PY_MINOR_VERSION,
        ") creates sub-interpreters only with the legacy settings "
        "(SubInterpreterOptions::Legacy()); ",
        o.gil == SubInterpreterOptions::Gil::kOwn
            ? "an own GIL (PEP 684) needs CPython 3.12 or newer"
            : "PyInterpreterConfig settings need CPython 3.12 or newer"));
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
    return absl::InvalidArgumentError("pyscope: end_deadline is negative");
  }
  return absl::OkStatus();
}

SubInterpreter::SubInterpreter() : SubInterpreter(SubInterpreterOptions::Legacy()) {}

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

  detail::Core& core = detail::GetCore();
  GILGuard gil(std::nothrow);  // the caller's interpreter, else the main one
  if (!gil.ok()) return gil.status();
  PyThreadState* before = detail::compat::CurrentThreadStateUnchecked();
  PyThreadState* created = detail::NewInterpreter(options_, &status);
  if (created == nullptr) {
    // 3.12's Py_NewInterpreterFromConfig can fail with the caller detached.
    if (detail::compat::CurrentThreadStateUnchecked() != before) {
      if (detail::compat::kSwapSwitchesGil) {
        PyEval_RestoreThread(before);
      } else {
        PyThreadState_Swap(before);
      }
    }
    if (PyErr_Occurred() != nullptr) PyErr_Clear();
    return status;
  }
  PyInterpreterState* interp = PyThreadState_GetInterpreter(created);
  id_ = PyInterpreterState_GetID(interp);
  // Back to exactly where the caller was (3.12+: also back to its GIL).
  PyThreadState_Swap(before);
  // (Attaching `before` also moved this thread's PyGILState binding back
  // from the new interpreter's first state to `before`, from 3.12.)
  detail::AdoptThreadState(detail::ThisThread(), interp, created);

  control_ = std::make_shared<detail::InterpControl>();
  control_->interp = interp;
  control_->id = id_;
  control_->generation = core.generation.load(std::memory_order_acquire);
  control_->end_deadline = options_.end_deadline;
  detail::CoreLock lock(&core.mu);
  core.interps.push_back(control_);
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
  detail::CoreLock lock(&control_->mu);
  return !control_->ended;
}

PyInterpreterState* SubInterpreter::interpreter_state() const {
  if (control_ == nullptr) return nullptr;
  detail::CoreLock lock(&control_->mu);
  return control_->interp;
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
