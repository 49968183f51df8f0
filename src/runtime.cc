// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// ScopedRuntime: PyConfig from RuntimeOptions, initialization, and the
// finalization protocol described in pyscope/runtime.h, step by step.

#include "pyscope/runtime.h"

#include <signal.h>
#include <sys/stat.h>

#include <cstdio>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "attach.h"
#include "extras.h"
#include "gate.h"
#include "interpreter_registry.h"
#include "lock.h"
#include "misuse.h"
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

bool Exists(const std::string& path) {
  struct stat info;
  return ::stat(path.c_str(), &info) == 0;
}

// Checks the standard library is where the options say it is, before
// CPython is asked: CPython 3.9-3.10 reports a missing stdlib as an
// unrelated-looking encodings error, and some layouts exit the process.
absl::Status CheckStandardLibrary(const RuntimeOptions& options) {
  const std::string lib =
      absl::StrCat("python", PY_MAJOR_VERSION, ".", PY_MINOR_VERSION);
  const std::string zip =
      absl::StrCat("python", PY_MAJOR_VERSION, PY_MINOR_VERSION, ".zip");
  std::vector<std::string> tried;
  if (!options.module_search_paths.empty()) {
    for (const std::string& dir : options.module_search_paths) {
      const std::string marker = dir + "/encodings/__init__.py";
      tried.push_back(marker);
      if (Exists(marker)) return absl::OkStatus();
      // A zip archive on the path may hold the standard library.
      if (dir.size() > 4 && dir.compare(dir.size() - 4, 4, ".zip") == 0 &&
          Exists(dir)) {
        return absl::OkStatus();
      }
    }
    return absl::NotFoundError(absl::StrCat(
        "pyscope: RuntimeOptions::module_search_paths does not contain the "
        "Python standard library (no encodings package); tried: ",
        absl::StrJoin(tried, ", ")));
  }
  if (!options.home.empty()) {
    const std::string marker =
        absl::StrCat(options.home, "/lib/", lib, "/encodings/__init__.py");
    const std::string archive = absl::StrCat(options.home, "/lib/", zip);
    if (Exists(marker) || Exists(archive)) return absl::OkStatus();
    return absl::NotFoundError(absl::StrCat(
        "pyscope: RuntimeOptions::home is \"", options.home,
        "\" but the Python ", PY_MAJOR_VERSION, ".", PY_MINOR_VERSION,
        " standard library is not there; tried: ", marker, ", ", archive));
  }
  return absl::OkStatus();
}

absl::Status FromPyStatus(const PyStatus& status, const char* what) {
  if (PyStatus_IsExit(status)) {
    return absl::InternalError(absl::StrCat(
        "pyscope: ", what, " asked to exit with code ", status.exitcode));
  }
  return absl::InternalError(absl::StrCat(
      "pyscope: ", what, " failed",
      status.func != nullptr ? absl::StrCat(" in ", status.func) : "", ": ",
      status.err_msg != nullptr ? status.err_msg : "unknown error"));
}

absl::Status SetString(PyConfig* config, wchar_t** field,
                       const std::string& value, const char* name) {
  if (value.empty()) return absl::OkStatus();
  PyStatus status = PyConfig_SetBytesString(config, field, value.c_str());
  if (PyStatus_Exception(status)) return FromPyStatus(status, name);
  return absl::OkStatus();
}

absl::Status AppendAll(PyConfig* config, PyWideStringList* list,
                       const std::vector<std::string>& values,
                       const char* name) {
  for (const std::string& value : values) {
    wchar_t* wide = Py_DecodeLocale(value.c_str(), nullptr);
    if (wide == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "pyscope: cannot decode ", name, " entry \"", value, "\""));
    }
    PyStatus status = PyWideStringList_Append(list, wide);
    PyMem_RawFree(wide);
    if (PyStatus_Exception(status)) return FromPyStatus(status, name);
  }
  (void)config;
  return absl::OkStatus();
}

absl::Status BuildConfig(const RuntimeOptions& options, PyConfig* config) {
  if (options.preset == RuntimeOptions::Preset::kIsolated) {
    PyConfig_InitIsolatedConfig(config);
  } else {
    PyConfig_InitPythonConfig(config);
  }
  // argv is data for sys.argv, never interpreter options.
  config->parse_argv = 0;
  config->install_signal_handlers = options.install_signal_handlers ? 1 : 0;
  config->use_environment = options.use_environment ? 1 : 0;
  config->user_site_directory = options.user_site_directory ? 1 : 0;
  config->site_import = options.import_site ? 1 : 0;
  config->write_bytecode = options.write_bytecode ? 1 : 0;
  detail::compat::SetSafePath(
      config, options.preset == RuntimeOptions::Preset::kIsolated);

  absl::Status status = SetString(config, &config->program_name,
                                  options.program_name, "program_name");
  if (status.ok()) {
    status = SetString(config, &config->home, options.home, "home");
  }
  if (status.ok() && !options.argv.empty()) {
    std::vector<char*> argv;
    for (const std::string& arg : options.argv) {
      argv.push_back(const_cast<char*>(arg.c_str()));
    }
    PyStatus set = PyConfig_SetBytesArgv(
        config, static_cast<Py_ssize_t>(argv.size()), argv.data());
    if (PyStatus_Exception(set)) status = FromPyStatus(set, "argv");
  }
  if (status.ok() && !options.module_search_paths.empty()) {
    config->module_search_paths_set = 1;
    status = AppendAll(config, &config->module_search_paths,
                       options.module_search_paths, "module_search_paths");
  }
  if (status.ok() && options.edit_config) {
    status = options.edit_config(*config);
  }
  return status;
}

// CPython's signal module installs its KeyboardInterrupt handler for SIGINT
// when it is first imported on the main thread and SIGINT is at SIG_DFL,
// whatever PyConfig.install_signal_handlers says (signal_get_set_handlers in
// Modules/signalmodule.c). Imports it now and puts SIG_DFL back, so that a
// runtime without signal handlers keeps none when Python code (asyncio,
// subprocess, ...) imports `signal` later. Requires the GIL, on the
// initializing thread.
absl::Status KeepDefaultSigint() PYSCOPE_REQUIRES_GIL {
  PyObject* module = PyImport_ImportModule("signal");
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

// 1. One live runtime per process.
absl::Status Claim(const ScopedRuntime* runtime, const SourceLocation& where) {
  Process& process = GetProcess();
  {
    CoreLock lock(&process.mu);
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

void ReleaseClaim() {
  Process& process = GetProcess();
  CoreLock lock(&process.mu);
  process.live = nullptr;
}

// 2a. Adopt: the host started CPython.
absl::Status CheckHostStarted() {
  if (!Py_IsInitialized()) {
    return absl::FailedPreconditionError(
        "pyscope: ScopedRuntime::Adopt: Python is not initialized");
  }
  return absl::OkStatus();
}

// 2b. Start CPython from `options` and release the GIL (principle 1: no
// ambient GIL; the initializing thread gets it back through GILGuard like
// any other thread). `*init_tstate` is the thread's main thread state.
absl::Status StartPython(const RuntimeOptions& options,
                         PyThreadState** init_tstate)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {  // Py_InitializeFromConfig attaches
  if (Py_IsInitialized()) {
    return absl::AlreadyExistsError(
        "pyscope: Python is already initialized by the host; use "
        "ScopedRuntime::Adopt() to use pyscope with it");
  }
  absl::Status status = CheckStandardLibrary(options);
  if (!status.ok()) return status;
  struct sigaction sigint_before;
  const bool sigint_was_default =
      sigaction(SIGINT, nullptr, &sigint_before) == 0 &&
      (sigint_before.sa_flags & SA_SIGINFO) == 0 &&
      sigint_before.sa_handler == SIG_DFL;
  PyConfig config;
  status = BuildConfig(options, &config);
  if (status.ok()) {
    PyStatus init = Py_InitializeFromConfig(&config);
    if (PyStatus_Exception(init)) {
      status = FromPyStatus(init, "Py_InitializeFromConfig");
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
    status = KeepDefaultSigint();
  }
  if (!status.ok()) {
    Py_FinalizeEx();
    return status;
  }
  *init_tstate = PyEval_SaveThread();
  return absl::OkStatus();
}

// 3. Open the gate; the initializing thread keeps its state cached.
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

// Finalize runs on the initializing thread outside every guard scope.
absl::Status CheckFinalizingThread(Record& self, const SourceLocation& where) {
  Process& process = GetProcess();
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

// 5a. Calls posted to the main thread (pyscope/main_thread.h) that have
// not run are destroyed unrun and counted, and no more are accepted for
// this runtime: Py_FinalizeEx would otherwise run them while it tears
// Python down, or never. Runs with the GIL that step 5 took (their closures
// may own Python objects), which the analysis cannot follow.
void DiscardPendingMainThreadCalls() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  detail::DiscardMainThreadCalls();
}

// 6. Py_FinalizeEx, or hands the interpreter back: to the host (adopted),
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
  const int rc = Py_FinalizeEx();
  Gate::Get().MarkFreed();
  if (rc != 0) {
    return absl::InternalError(absl::StrCat(
        "pyscope: Py_FinalizeEx returned ", rc,
        " (flushing sys.stdout or sys.stderr failed during finalization)"));
  }
  return absl::OkStatus();
}

// 7. Forget every cached thread state (new generation) and the claim.
void Forget() {
  Process& process = GetProcess();
  process.init_tstate = nullptr;
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
  // 2. Start CPython, or adopt the host's.
  PyThreadState* init_tstate = nullptr;
  status = adopt ? CheckHostStarted() : StartPython(options_, &init_tstate);
  if (!status.ok()) return status;
  main_interp_ = PyInterpreterState_Main();
  // 3. Open the gate.
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
  Record& self = detail::ThisRecord();
  absl::Status result = CheckFinalizingThread(self, where_);
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
  // 6. Py_FinalizeEx.
  KeepFirstError(result, FinalizePython(self, gil, subs));
  // 7. Forget.
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

uint64_t RuntimeGeneration() { return Gate::Get().generation(); }

}  // namespace pyscope
