// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// ScopedRuntime: PyConfig from RuntimeOptions, initialization, and the
// finalization protocol described in pyscope/runtime.h, step by step.

#include "pyscope/runtime.h"

#include <signal.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdio>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "attach.h"
#include "build_info.h"
#include "config.h"
#include "extras.h"
#include "gate.h"
#include "host_setup.h"
#include "interpreter_registry.h"
#include "interrupt_setup.h"
#include "lock.h"
#include "misuse.h"
#include "platform.h"
#include "pyscope/error.h"
#include "pyscope/exec.h"
#include "thread_state_cache.h"

namespace pyscope {
namespace {

using detail::CoreLock;
using detail::Gate;
using detail::Record;

// What exists once per process for ScopedRuntime: which runtime is live,
// the thread state its initializing thread started with, and the exit
// callbacks.
struct Process {
  detail::CoreMutex mu;
  const ScopedRuntime* live ABSL_GUARDED_BY(mu) = nullptr;
  std::vector<ScopedRuntime::ExitCallback> exit_callbacks ABSL_GUARDED_BY(mu);
  // Why CPython cannot start again in this process, once that happened.
  std::string poisoned_by ABSL_GUARDED_BY(mu);
  // What finalized runtimes left that makes re-initialization unsafe
  // (RuntimeOptions::ReinitHazards), in the order found.
  std::vector<std::string> reinit_hazards ABSL_GUARDED_BY(mu);
  // Set by the Py_AtExit hook when Py_FinalizeEx ran without pyscope.
  std::atomic<bool> finalized_behind_back{false};
  // Written and read by the runtime's own thread.
  Record* initializer = nullptr;
  PyThreadState* init_tstate = nullptr;
};

Process& GetProcess() {
  // Never destroyed: a ScopedRuntime may be a static object.
  static Process* const process = new Process;
  return *process;
}

void KeepFirstError(absl::Status& result, absl::Status status) {
  if (result.ok() && !status.ok()) result = std::move(status);
}

// A SIGINT that arrives while the placeholder is installed (a few
// microseconds at start-up) is delivered again once SIG_DFL is back.
volatile sig_atomic_t sigint_during_start = 0;
void PlaceholderSigint(int) { sigint_during_start = 1; }

// Initializes CPython's _signal module (not `signal`, which imports enum)
// so that later imports of `signal` cannot install Python's
// KeyboardInterrupt handler on SIGINT; see compat::kSigintViewIsNone for
// the view Python is left with. The process-level disposition is SIG_DFL
// before and after. Requires the GIL, on the initializing thread.
absl::Status KeepSigintForHost() PYSCOPE_REQUIRES_GIL {
  if (detail::compat::kSigintViewIsNone) {
    // _signal records a SIGINT that is not SIG_DFL as "none of our
    // business" and leaves it alone.
    struct sigaction placeholder = {};
    placeholder.sa_handler = &PlaceholderSigint;
    sigemptyset(&placeholder.sa_mask);
    struct sigaction previous;
    sigaction(SIGINT, &placeholder, &previous);
    PyObject* module = PyImport_ImportModule("_signal");
    sigaction(SIGINT, &previous, nullptr);
    if (sigint_during_start != 0) {
      sigint_during_start = 0;
      raise(SIGINT);
    }
    if (module == nullptr) return PythonError::FetchAndClear().status();
    Py_DECREF(module);
    return absl::OkStatus();
  }
  PyObject* module = PyImport_ImportModule("_signal");
  if (module == nullptr) return PythonError::FetchAndClear().status();
  PyObject* default_handler = PyObject_GetAttrString(module, "SIG_DFL");
  PyObject* result = default_handler == nullptr
                         ? nullptr
                         : PyObject_CallMethod(module, "signal", "iO", SIGINT,
                                               default_handler);
  Py_XDECREF(default_handler);
  Py_DECREF(module);
  if (result == nullptr) return PythonError::FetchAndClear().status();
  Py_DECREF(result);
  return absl::OkStatus();
}

// Inserts `paths` at the front of sys.path. Requires the GIL.
absl::Status PrependSysPath(const std::vector<std::string>& paths)
    PYSCOPE_REQUIRES_GIL {
  PyObject* sys_path = PySys_GetObject("path");  // borrowed
  if (sys_path == nullptr || !PyList_Check(sys_path)) {
    return absl::InternalError("pyscope: sys.path is not a list");
  }
  for (size_t i = paths.size(); i-- > 0;) {
    PyObject* entry = PyUnicode_DecodeFSDefault(paths[i].c_str());
    if (entry == nullptr || PyList_Insert(sys_path, 0, entry) != 0) {
      Py_XDECREF(entry);
      return PythonError::FetchAndClear().status();
    }
    Py_DECREF(entry);
  }
  return absl::OkStatus();
}

// --- Initialization steps ---

// The gate slot of "no thread": the finalizer of a finalization that
// pyscope did not start, so that no thread may attach as its finalizer.
detail::Gate::Slot& NobodysSlot() {
  static detail::Gate::Slot* const slot = new detail::Gate::Slot(
      detail::platform::ThreadIdentity{}, *new detail::AdmissionSlot);
  return *slot;
}

// Registered with Py_AtExit at every start: CPython calls it at the end of
// every Py_FinalizeEx. When the gate is still open, the host (or Python
// code) finalized CPython behind pyscope's back: the thread states pyscope
// cached are freed. Closing the gate makes later guards a kUnavailable
// status, and marking the generation freed makes a thread that comes back
// from AllowThreads end by unwinding (as at pyscope's own point of no
// return) instead of touching freed memory. Finalize() then reports it.
void NoticeFinalizeBehindOurBack() {
  Gate& gate = Gate::Get();
  if (gate.state() != Gate::State::kRunning) return;  // pyscope's own
  GetProcess().finalized_behind_back.store(true);
  gate.Close(NobodysSlot());
  gate.MarkPastPointOfNoReturn();
  gate.MarkFreed();
}

// 1. One live runtime per process.
absl::Status Claim(const ScopedRuntime* runtime, const SourceLocation& where) {
  Process& process = GetProcess();
  {
    CoreLock lock(&process.mu);
    if (!process.poisoned_by.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "pyscope: CPython cannot be started again in this process: an "
          "earlier initialization failed after CPython had set up its "
          "runtime (",
          process.poisoned_by,
          "); CPython offers no way to reset that. Start Python in a new "
          "process."));
    }
    if (process.live == nullptr) {
      process.live = runtime;
      return absl::OkStatus();
    }
  }
  detail::ReportMisuse(
      Misuse::kSecondRuntime, detail::GuardKind::kScopedRuntime, where,
      "A pyscope runtime is already live in this process; CPython has one "
      "main interpreter. Share the existing ScopedRuntime, or finalize it "
      "before creating a new one.");
  return absl::AlreadyExistsError(
      "pyscope: a ScopedRuntime is already live in this process");
}

// 2. Refuse, or warn, when an earlier runtime left a hazard for
// re-initialization (see RuntimeOptions::ReinitHazards).
absl::Status CheckReinitHazards(const RuntimeOptions& options) {
  const std::vector<std::string> hazards = PendingReinitHazards();
  if (hazards.empty()) return absl::OkStatus();
  const std::string text = absl::StrCat(
      "a runtime finalized earlier in this process left what CPython ",
      PY_MAJOR_VERSION, ".", PY_MINOR_VERSION,
      " does not survive re-initialization: ", absl::StrJoin(hazards, "; "),
      ". Importing such a module again (or running after such threads) can "
      "abort or crash the process (docs/pitfalls.md)");
  if (options.reinit_hazards != RuntimeOptions::ReinitHazards::kWarnAndTry) {
    return absl::FailedPreconditionError(absl::StrCat(
        "pyscope: ", text,
        ". Start Python in a new process, or set RuntimeOptions::"
        "reinit_hazards = ReinitHazards::kWarnAndTry to try anyway."));
  }
  const std::string warning =
      absl::StrCat("pyscope: warning: ", text, "; starting anyway as asked.");
  if (!options.reinit_warning) {
    std::fprintf(stderr, "%s\n", warning.c_str());
    return absl::OkStatus();
  }
  try {
    options.reinit_warning(warning);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(
        "pyscope: RuntimeOptions::reinit_warning threw: ", e.what()));
  } catch (...) {
    return absl::InternalError(
        "pyscope: RuntimeOptions::reinit_warning threw a non-standard "
        "exception");
  }
  return absl::OkStatus();
}

void ReleaseClaim() {
  Process& process = GetProcess();
  CoreLock lock(&process.mu);
  process.live = nullptr;
}

// 3a. Adopt: the host started CPython (too late for what must be
// registered before initialization).
absl::Status CheckHostStarted(const RuntimeOptions& options) {
  if (!Py_IsInitialized()) {
    return absl::FailedPreconditionError(
        "pyscope: ScopedRuntime::Adopt: Python is not initialized");
  }
  detail::ForgetInterruptSignal();
  return detail::CheckHostOptions(options, /*adopt=*/true);
}

// 3b, before Py_InitializeFromConfig: the registrations CPython accepts only
// now (built-in modules, audit hooks, before_initialize callbacks), applied
// at every initialization because finalization forgets them.
absl::Status PrepareHost(const RuntimeOptions& options) {
  return detail::ApplyBeforeInitialization(options);
}

// 3b, after Py_InitializeFromConfig (GIL held): the interrupt signal, then
// the process state put back if the options say so.
absl::Status FinishHost(const RuntimeOptions& options,
                        const detail::ProcessStateSnapshot& before)
    PYSCOPE_REQUIRES_GIL {
  absl::Status status = detail::PrepareInterruptSignal();
  if (options.restore_process_state) {
    before.Restore(/*include_sigint=*/!options.install_signal_handlers);
  }
  return status;
}

// 3b. Start CPython from `options` and release the GIL (principle 1: no
// ambient GIL; the initializing thread gets it back through GILGuard like
// any other thread). `*init_tstate` is the thread's main thread state.
// `*poisoned` is set when CPython failed half way and cannot be started
// again in this process.
absl::Status StartPython(const RuntimeOptions& options,
                         PyThreadState** init_tstate, bool* poisoned)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {  // Py_InitializeFromConfig attaches
  if (Py_IsInitialized()) {
    return absl::AlreadyExistsError(
        "pyscope: Python is already initialized by the host; use "
        "ScopedRuntime::Adopt() to use pyscope with it");
  }
  absl::Status status = ValidateRuntimeOptions(options);
  // The libpython in this process is the one pyscope was built against.
  if (status.ok()) status = detail::CheckLoadedLibpython();
  if (status.ok()) status = detail::CheckHostOptions(options, /*adopt=*/false);
  if (status.ok()) status = PrepareHost(options);
  if (!status.ok()) return status;
  const detail::ProcessStateSnapshot process_state =
      detail::ProcessStateSnapshot::Take();
  struct sigaction sigint_before;
  const bool sigint_was_default =
      sigaction(SIGINT, nullptr, &sigint_before) == 0 &&
      (sigint_before.sa_flags & SA_SIGINFO) == 0 &&
      sigint_before.sa_handler == SIG_DFL;
  PyConfig config;
  status = detail::BuildConfig(options, &config);
  if (status.ok()) status = detail::CheckConfigBeforeStart(config);
  if (status.ok()) {
    PyStatus init = Py_InitializeFromConfig(&config);
    if (PyStatus_Exception(init)) {
      status = detail::InitializationError(init, config);
      // The main interpreter exists: CPython got past its core
      // initialization, and a new Py_InitializeFromConfig would reuse that
      // half-initialized runtime.
      *poisoned = PyInterpreterState_Main() != nullptr;
    }
  }
  PyConfig_Clear(&config);
  if (!status.ok()) return status;
  // Py_InitializeFromConfig returned with this thread attached.
  if (!options.prepend_sys_path.empty() &&
      options.module_search_paths.empty()) {
    status = PrependSysPath(options.prepend_sys_path);
  }
  if (status.ok() && !options.install_signal_handlers && sigint_was_default) {
    status = KeepSigintForHost();
  }
  if (status.ok()) status = FinishHost(options, process_state);
  if (!status.ok()) {
    Py_FinalizeEx();
    detail::AfterPythonFinalized();
    return status;
  }
  Py_AtExit(&NoticeFinalizeBehindOurBack);
  *init_tstate = PyEval_SaveThread();
  return absl::OkStatus();
}

// 4. Open the gate; the initializing thread keeps its state cached.
void OpenGate(PyInterpreterState* main, PyThreadState* init_tstate) {
  Process& process = GetProcess();
  Record& self = detail::ThisRecord();
  process.initializer = &self;
  process.init_tstate = init_tstate;
  const uint64_t generation = Gate::Get().Open(main);
  if (init_tstate != nullptr) {
    self.main_tstate = init_tstate;
    self.main_generation = generation;
  }
}

// --- Finalization steps (numbered as in pyscope/runtime.h) ---

// Finalize runs once, on the initializing thread, outside every guard
// scope and (for a runtime pyscope started) with the thread detached.
absl::Status CheckCanFinalize(Record& self, bool adopted,
                              const SourceLocation& where) {
  Process& process = GetProcess();
  if (Gate::Get().state() == Gate::State::kFinalizing) {
    detail::ReportMisuse(
        Misuse::kFinalizeReentered, detail::GuardKind::kScopedRuntime, where,
        "Finalize() was called while the runtime is already being finalized "
        "(from an exit callback, or from code it runs). The finalization in "
        "progress goes on; do not finalize from inside it.");
    return absl::FailedPreconditionError(
        "pyscope: ScopedRuntime::Finalize called during its own finalization");
  }
  if (&self != process.initializer) {
    detail::ReportMisuse(
        Misuse::kFinalizeOnOtherThread, detail::GuardKind::kScopedRuntime,
        where,
        absl::StrCat("The runtime was initialized on thread ",
                     detail::DescribeThread(*process.initializer),
                     "; CPython must be finalized on that thread (its main "
                     "thread state lives there). Finalize or destroy the "
                     "ScopedRuntime on the thread that created it.")
            .c_str());
    return absl::FailedPreconditionError(
        "pyscope: ScopedRuntime::Finalize called on a thread other than the "
        "initializing one");
  }
  if (self.level != 0) {
    detail::ReportMisuse(
        Misuse::kFinalizeWhileAttached, detail::GuardKind::kScopedRuntime,
        where,
        absl::StrCat("The finalizing thread still has ", self.level,
                     " pyscope guard scope(s) open. End every GILGuard, "
                     "AllowThreads and ThreadStateSwap on this thread before "
                     "finalizing the runtime.")
            .c_str());
    return absl::FailedPreconditionError(
        "pyscope: ScopedRuntime::Finalize called inside a guard scope");
  }
  // (An adopted runtime leaves the GIL as the host has it.)
  if (!adopted && detail::AttachedHere(self) != nullptr) {
    detail::ReportMisuse(
        Misuse::kFinalizeWhileAttached, detail::GuardKind::kScopedRuntime,
        where,
        "The finalizing thread is attached to Python by something pyscope "
        "did not do (running Python code called the finalization, or a raw "
        "PyGILState_Ensure / PyEval_RestoreThread is still in effect). "
        "Release that attachment before finalizing the runtime.");
    return absl::FailedPreconditionError(
        "pyscope: ScopedRuntime::Finalize called while the thread is "
        "attached to Python");
  }
  return absl::OkStatus();
}

// 3. Every live sub-interpreter ends first (Py_FinalizeEx aborts on live
// ones before 3.13). One that cannot end safely keeps Python from being
// finalized (step 6).
absl::Status EndSubInterpreters() { return detail::EndAllInterpreters(); }

// How the finalizing thread holds the GIL for the exit callbacks.
struct FinalizerGil {
  bool adopted;
  PyGILState_STATE adopted_state{};
};

// 5. Takes the GIL and runs the exit callbacks, last added first, while
// Python fully works. Returns the first exception a callback threw.
absl::Status RunExitCallbacks(Record& self, FinalizerGil* gil)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {  // attaches by itself
  Process& process = GetProcess();
  if (gil->adopted) {
    gil->adopted_state = PyGILState_Ensure();
  } else {
    PyEval_RestoreThread(process.init_tstate);
  }
  self.holding = true;
  self.tstate = detail::compat::CurrentThreadStateUnchecked();
  std::vector<ScopedRuntime::ExitCallback> callbacks;
  {
    CoreLock lock(&process.mu);
    callbacks.swap(process.exit_callbacks);
  }
  absl::Status result;
  for (auto it = callbacks.rbegin(); it != callbacks.rend(); ++it) {
    try {
      (*it)();
    } catch (const std::exception& e) {
      KeepFirstError(result,
                     absl::InternalError(absl::StrCat(
                         "pyscope: an exit callback threw: ", e.what())));
    } catch (...) {
      KeepFirstError(result,
                     absl::InternalError("pyscope: an exit callback threw a "
                                         "non-standard exception"));
    }
    if (PyErr_Occurred() != nullptr) PyErr_Clear();
  }
  return result;
}

// See compat::kThreadingShutdownWaitsForImporter: when a thread other than
// the finalizing one imported `threading` first, threading._shutdown()
// (run by Py_FinalizeEx) would wait for that thread's state to be deleted,
// which for an idle native thread never happens before Py_FinalizeEx
// itself deletes it. CPython means to ignore such a thread (bpo-1596321,
// the comment in _shutdown); releasing its lock here does that. Requires
// the GIL.
void ReleaseThreadingImporter() PYSCOPE_REQUIRES_GIL {
  if (!detail::compat::kThreadingShutdownWaitsForImporter) return;
  PyObject* threading =
      PyDict_GetItemString(PyImport_GetModuleDict(), "threading");  // borrowed
  if (threading == nullptr) return;
  PyObject* importer = PyObject_GetAttrString(threading, "_main_thread");
  PyObject* ident =
      importer != nullptr ? PyObject_GetAttrString(importer, "ident") : nullptr;
  const bool other_thread =
      ident != nullptr && PyLong_Check(ident) &&
      PyLong_AsUnsignedLong(ident) != PyThread_get_thread_ident();
  PyObject* lock =
      other_thread ? PyObject_GetAttrString(importer, "_tstate_lock") : nullptr;
  if (lock != nullptr && lock != Py_None) {
    PyObject* locked = PyObject_CallMethod(lock, "locked", nullptr);
    if (locked != nullptr && PyObject_IsTrue(locked) == 1) {
      Py_XDECREF(PyObject_CallMethod(lock, "release", nullptr));
    }
    Py_XDECREF(locked);
  }
  Py_XDECREF(lock);
  Py_XDECREF(ident);
  Py_XDECREF(importer);
  PyErr_Clear();
}

// The number of Python daemon threads of the main interpreter still running
// (threads CPython made for native threads, _DummyThread, do not count).
// Requires the GIL.
long RunningDaemonThreads() PYSCOPE_REQUIRES_GIL {
  if (PyDict_GetItemString(PyImport_GetModuleDict(), "threading") == nullptr) {
    return 0;
  }
  PyObject* globals = PyDict_New();
  if (globals == nullptr || PyDict_SetItemString(globals, "__builtins__",
                                                 PyEval_GetBuiltins()) != 0) {
    Py_XDECREF(globals);
    PyErr_Clear();
    return 0;
  }
  PyObject* count = PyRun_String(
      "(lambda t: sum(1 for x in t.enumerate() if x.daemon and x.is_alive() "
      "and not isinstance(x, t._DummyThread) and x is not t.current_thread()"
      "))(__import__('threading'))",
      Py_eval_input, globals, globals);
  Py_DECREF(globals);
  const long result = count != nullptr ? PyLong_AsLong(count) : 0;
  Py_XDECREF(count);
  PyErr_Clear();
  return result;
}

// 6. Notes, for the next runtime, what this one leaves that re-initializing
// CPython does not survive: known extension modules in sys.modules or
// loaded (also by sub-interpreters: their shared objects stay mapped), and
// Python daemon threads still running (Py_FinalizeEx does not wait for
// them). Requires the GIL.
void NoteReinitHazards(bool adopted) PYSCOPE_REQUIRES_GIL {
  if (adopted) return;  // the host finalizes, and decides what comes next
  const uint64_t generation = Gate::Get().generation();
  std::vector<std::string> found;
  PyObject* modules = PyImport_GetModuleDict();  // borrowed
  const std::vector<std::string> loaded =
      detail::platform::LoadedSharedObjectStems();
  size_t count = 0;
  const detail::compat::ReinitUnsafeModule* unsafe =
      detail::compat::ReinitUnsafeModules(&count);
  for (size_t i = 0; i < count; ++i) {
    const bool imported =
        PyDict_GetItemString(modules, unsafe[i].module) != nullptr;
    bool mapped = false;
    for (const std::string& stem : loaded)
      mapped |= stem == unsafe[i].shared_object;
    if (imported || mapped) {
      found.push_back(absl::StrCat("extension module ", unsafe[i].module,
                                   " (generation ", generation, ")"));
    }
  }
  const long daemons = RunningDaemonThreads();
  if (daemons > 0) {
    found.push_back(absl::StrCat(daemons,
                                 " Python daemon thread(s) running at "
                                 "finalization (generation ",
                                 generation, ")"));
  }
  if (found.empty()) return;
  Process& process = GetProcess();
  CoreLock lock(&process.mu);
  for (std::string& hazard : found) {
    // A module loaded once stays loaded: name it once, with the first
    // generation that loaded it.
    const std::string key = hazard.substr(0, hazard.find(" (generation"));
    bool known = false;
    for (const std::string& old : process.reinit_hazards) {
      known |= old.substr(0, old.find(" (generation")) == key;
    }
    if (!known) process.reinit_hazards.push_back(std::move(hazard));
  }
}

// 5a. Calls posted to the main thread (pyscope/main_thread.h) that have
// not run are destroyed unrun and counted, and no more are accepted for
// this runtime: Py_FinalizeEx would otherwise run them while it tears
// Python down, or never. Runs with the GIL that step 5 took (their closures
// may own Python objects), which the analysis cannot follow.
void DiscardPendingMainThreadCalls() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  detail::DiscardMainThreadCalls();
}

// 6, with the GIL that step 5 took (FinalizerGil), which the analysis
// cannot follow.
void NoteReinitHazardsWithFinalizerGil(bool adopted)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  NoteReinitHazards(adopted);
}

// 7. Py_FinalizeEx, or hands the interpreter back: to the host (adopted),

// or left initialized when a sub-interpreter could not be ended (`subs`).
absl::Status FinalizePython(Record& self, const FinalizerGil& gil,
                            const absl::Status& subs)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {  // detaches by itself
  self.holding = false;
  self.tstate = nullptr;
  if (gil.adopted) {
    // Forget, do not delete, the thread states pyscope created for other
    // threads of the host's main interpreter: each is its thread's
    // PyGILState thread state, so deleting it from this thread leaves that
    // thread's gilstate pointer dangling (its next PyGILState_Ensure is a
    // use after free), and from 3.12 also clears *this* thread's gilstate
    // binding (unbind_gilstate_tstate in Python/pystate.c clears the
    // calling thread's slot), so PyGILState_Release below aborts with
    // "auto-releasing thread-state, but no thread-state for this thread".
    // The host's Py_FinalizeEx frees them; the generation bump of step 7
    // keeps pyscope from using them again.
    PyGILState_Release(gil.adopted_state);
    return absl::OkStatus();
  }
  if (!detail::InterpreterRegistry::Get().empty()) {
    // Leaving Python initialized is safe; Py_FinalizeEx with a live
    // sub-interpreter that still has threads inside is not.
    PyEval_SaveThread();
    return absl::FailedPreconditionError(absl::StrCat(
        "pyscope: Py_FinalizeEx was not called because a sub-interpreter "
        "could not be ended: ",
        subs.message()));
  }
  ReleaseThreadingImporter();
  const int rc = Py_FinalizeEx();
  Gate::Get().MarkFreed();
  detail::AfterPythonFinalized();
  if (rc != 0) {
    return absl::InternalError(absl::StrCat(
        "pyscope: Py_FinalizeEx returned ", rc,
        " (flushing sys.stdout or sys.stderr failed during finalization)"));
  }
  return absl::OkStatus();
}

// 8. Forget every cached thread state (new generation) and the claim.
void Forget() {
  Process& process = GetProcess();
  process.init_tstate = nullptr;
  detail::ForgetInterruptSignal();
  Gate::Get().Finish();
  process.initializer = nullptr;
  ReleaseClaim();
}

}  // namespace

RuntimeOptions RuntimeOptions::Isolated() { return RuntimeOptions(); }

RuntimeOptions RuntimeOptions::Python() {
  RuntimeOptions options;
  options.preset = Preset::kPython;
  options.install_signal_handlers = true;
  options.use_environment = true;
  options.user_site_directory = true;
  return options;
}

ScopedRuntime::ScopedRuntime(SourceLocation where)
    : ScopedRuntime(RuntimeOptions::Isolated(), where) {}

ScopedRuntime::ScopedRuntime(const RuntimeOptions& options,
                             SourceLocation where)
    : options_(options), where_(where) {
  absl::Status status = Initialize(/*adopt=*/false);
  if (!status.ok()) throw Error(std::move(status));
}

ScopedRuntime::ScopedRuntime(Uninitialized, const RuntimeOptions& options,
                             SourceLocation where)
    : options_(options), where_(where) {}

absl::StatusOr<std::unique_ptr<ScopedRuntime>> ScopedRuntime::Create(
    const RuntimeOptions& options, SourceLocation where) {
  std::unique_ptr<ScopedRuntime> runtime(
      new ScopedRuntime(Uninitialized{}, options, where));
  absl::Status status = runtime->Initialize(/*adopt=*/false);
  if (!status.ok()) return status;
  return runtime;
}

absl::StatusOr<std::unique_ptr<ScopedRuntime>> ScopedRuntime::Adopt(
    const RuntimeOptions& options, SourceLocation where) {
  std::unique_ptr<ScopedRuntime> runtime(
      new ScopedRuntime(Uninitialized{}, options, where));
  absl::Status status = runtime->Initialize(/*adopt=*/true);
  if (!status.ok()) return status;
  return runtime;
}

absl::Status ScopedRuntime::Initialize(bool adopt) {
  // 1. Claim the process's one runtime.
  absl::Status status = Claim(this, where_);
  if (!status.ok()) return status;
  auto release_claim = absl::MakeCleanup(&ReleaseClaim);
  // 2. Refuse (or warn) after a generation that re-initialization does
  //    not survive.
  if (!adopt) status = CheckReinitHazards(options_);
  if (!status.ok()) return status;
  // 3. Start CPython, or adopt the host's.
  PyThreadState* init_tstate = nullptr;
  bool poisoned = false;
  status = adopt ? CheckHostStarted(options_)
                 : StartPython(options_, &init_tstate, &poisoned);
  if (poisoned) {
    Process& process = GetProcess();
    CoreLock lock(&process.mu);
    process.poisoned_by = std::string(status.message());
  }
  if (!status.ok()) return status;
  main_interp_ = PyInterpreterState_Main();
  // 4. Open the gate.
  OpenGate(main_interp_, init_tstate);
  std::move(release_claim).Cancel();
  adopted_ = adopt;
  live_ = true;
  return absl::OkStatus();
}

ScopedRuntime::~ScopedRuntime() {
  if (!live_ || finalized_) return;
  absl::Status status = Finalize();
  if (!status.ok()) {
    std::fprintf(stderr, "pyscope: ScopedRuntime finalization: %s\n",
                 status.ToString().c_str());
  }
}

void ScopedRuntime::AddExitCallback(ExitCallback callback) {
  Process& process = GetProcess();
  CoreLock lock(&process.mu);
  process.exit_callbacks.push_back(std::move(callback));
}

absl::Status ScopedRuntime::Finalize() {
  if (finalized_) return finalize_status_;
  if (!live_) return absl::OkStatus();
  if (GetProcess().finalized_behind_back.exchange(false)) {
    // Nothing of this runtime is left to finalize; forget it so that a new
    // ScopedRuntime can start.
    Forget();
    finalized_ = true;
    finalize_status_ = absl::FailedPreconditionError(
        "pyscope: Py_FinalizeEx was called behind pyscope's back (not "
        "through ScopedRuntime::Finalize): guards were refused from then "
        "on, threads inside AllowThreads were ended, exit callbacks did not "
        "run. Finalize the runtime through its ScopedRuntime.");
    return finalize_status_;
  }
  Record& self = detail::ThisRecord();
  absl::Status result = CheckCanFinalize(self, adopted_, where_);
  if (!result.ok()) return result;
  Gate& gate = Gate::Get();
  // 1. Close the gate.
  gate.Close(self.slot);
  // 2. Drain.
  result = gate.Drain(options_.drain_deadline);
  // 3. End the sub-interpreters.
  const absl::Status subs = EndSubInterpreters();
  KeepFirstError(result, subs);
  // 4. Point of no return. (An adopted runtime frees nothing: the host's
  //    interpreter keeps running.)
  if (adopted_) {
    gate.WaitForAttaching();
  } else {
    gate.PassPointOfNoReturn();
  }
  // 5. Exit callbacks.
  FinalizerGil gil{adopted_};
  KeepFirstError(result, RunExitCallbacks(self, &gil));
  // 5a. Main-thread calls that never ran are destroyed (GIL held).
  DiscardPendingMainThreadCalls();
  // 6. Note what the next runtime must know.
  NoteReinitHazardsWithFinalizerGil(adopted_);
  // 7. Py_FinalizeEx.
  KeepFirstError(result, FinalizePython(self, gil, subs));
  // 8. Forget.
  Forget();
  finalized_ = true;
  finalize_status_ = result;
  return result;
}

namespace detail {

bool LockRuntimeForFork(int patience_ms) {
  return LockWithin(GetProcess().mu, patience_ms);
}

void UnlockRuntimeAfterFork(bool locked,
                            bool in_child) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (locked) {
    GetProcess().mu.Unlock();
  } else if (in_child) {
    RenewInForkChild(GetProcess().mu);
  }
}

bool IsRuntimeThread(const Record& record) {
  return GetProcess().initializer == &record;
}

// The runtime must be finalized on its initializing thread, whose main
// thread state Finalize re-attaches; in a fork child that thread may not
// exist (CPython's PyOS_AfterFork_Child makes the forking thread the main
// thread and deletes the other threads' states).
void HandRuntimeToForkChild(Record& survivor, PyThreadState* tstate) {
  Process& process = GetProcess();
  {
    CoreLock lock(&process.mu);
    if (process.live == nullptr) return;
  }
  if (process.initializer == &survivor || tstate == nullptr) return;
  process.initializer = &survivor;
  process.init_tstate = tstate;
}

}  // namespace detail

RuntimeState GetRuntimeState() {
  switch (Gate::Get().state()) {
    case Gate::State::kUninitialized:
      return RuntimeState::kUninitialized;
    case Gate::State::kRunning:
      return RuntimeState::kRunning;
    case Gate::State::kFinalizing:
      return RuntimeState::kFinalizing;
    case Gate::State::kFinalized:
      break;
  }
  return RuntimeState::kFinalized;
}

std::vector<std::string> PendingReinitHazards() {
  Process& process = GetProcess();
  CoreLock lock(&process.mu);
  return process.reinit_hazards;
}

uint64_t RuntimeGeneration() { return Gate::Get().generation(); }

}  // namespace pyscope
