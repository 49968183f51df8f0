// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// RuntimeOptions and ScopedRuntime: the lifetime of the embedded interpreter.
//
//   int main() {
//     pyscope::ScopedRuntime python;       // isolated by default
//     std::thread worker([] {
//       pyscope::GILGuard gil;             // every thread, the main one too
//       pyscope::Exec("print('hello')");
//     });
//     worker.join();
//   }                                      // drained, then Py_FinalizeEx
//
// The constructing thread does NOT hold the GIL when construction returns:
// it uses GILGuard like every other thread. This removes the most common
// embedding hang (workers waiting forever for a GIL the main thread never
// released).

#ifndef PYSCOPE_RUNTIME_H_
#define PYSCOPE_RUNTIME_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "pyscope/annotations.h"
#include "pyscope/detail/compat.h"
#include "pyscope/detail/export.h"
#include "pyscope/diagnostics.h"
#include "pyscope/host_options.h"
#include "pyscope/source_location.h"

namespace pyscope {

// How to configure the interpreter, as plain C++ values. Copied by
// ScopedRuntime, never consumed or modified. Strings are UTF-8 (checked:
// invalid UTF-8 or a NUL byte is kInvalidArgument naming the field).
struct PYSCOPE_API RuntimeOptions {
  enum class Preset {
    // PyConfig_InitIsolatedConfig: no environment variables, no user site
    // directory, no script directory or current directory on sys.path
    // (PyConfig.safe_path = 1 on 3.11+), no signal handlers, argv not parsed.
    // The default: an embedded interpreter should not change behaviour with
    // the user's shell.
    kIsolated,
    // PyConfig_InitPythonConfig: behaves like the `python` program (reads
    // PYTHON* environment variables, user site, signal handlers), except
    // that argv is still never parsed as options.
    kPython,
  };

  // The default: a default-constructed RuntimeOptions (Preset::kIsolated,
  // every field at its default).
  static RuntimeOptions Isolated();
  // Preset::kPython with install_signal_handlers, use_environment and
  // user_site_directory on.
  static RuntimeOptions Python();

  // The PyConfig_Init* call the configuration starts from.
  // install_signal_handlers, use_environment, user_site_directory,
  // import_site and write_bytecode are applied after it, so they win over
  // it: changing preset alone to kPython leaves environment variables, the
  // user site directory and signal handlers off. Use Python() for all of
  // them.
  Preset preset = Preset::kIsolated;

  // PyConfig.program_name: sys.executable / the program name CPython uses
  // to compute paths. Empty: CPython's default.
  std::string program_name;

  // PyConfig.home, the PYTHONHOME equivalent: the prefix holding
  // lib/pythonX.Y. Empty: computed by CPython from its build prefix or
  // program_name. If the standard library is not under the home CPython
  // would use (this field, a home set by edit_config, or PYTHONHOME when the
  // environment is read), construction fails with kNotFound naming the paths
  // tried (home/lib/pythonX.Y/encodings/__init__.py and
  // home/lib/pythonXY.zip; one of them must exist), before CPython is called
  // (the process never exits).
  std::string home;

  // sys.argv, exactly as given. Never parsed as interpreter options
  // (PyConfig.parse_argv is always 0). Empty: CPython's default, [''].
  std::vector<std::string> argv;

  // When non-empty: exactly sys.path (PyConfig.module_search_paths, with
  // module_search_paths_set = 1), replacing the computed path. It must
  // contain the standard library: an entry holding encodings/__init__.py, or
  // an existing .zip file (kNotFound otherwise, naming the paths tried). The
  // site module (import_site) still appends the site-packages directories it
  // finds, as in any interpreter; set import_site = false for a sys.path
  // that is this list and nothing else.
  std::vector<std::string> module_search_paths;

  // Directories inserted at the front of the computed sys.path after
  // initialization (ignored when module_search_paths is set, which is
  // exact).
  std::vector<std::string> prepend_sys_path;

  // PyConfig.install_signal_handlers: install Python's SIGINT handler
  // (KeyboardInterrupt) and ignore SIGPIPE and SIGXFSZ, as the python
  // program does. Off for kIsolated: a host owns its signals. When false and
  // SIGINT is at its default disposition (SIG_DFL) before initialization,
  // pyscope also initializes CPython's _signal module during initialization
  // and keeps SIGINT at SIG_DFL: _signal would otherwise install Python's
  // SIGINT handler when it is first imported (by any import of signal),
  // whatever this field says. See docs/pitfalls.md, section Signal handlers.
  bool install_signal_handlers = false;

  // PyConfig.use_environment: read PYTHON* environment variables. Off for
  // kIsolated; setting it on with kIsolated is honored (PyConfig.isolated is
  // cleared, which would otherwise override it), the rest of the isolation
  // stays.
  bool use_environment = false;

  // PyConfig.user_site_directory: add the user site-packages directory. Off
  // for kIsolated; on is honored with kIsolated as for use_environment.
  bool user_site_directory = false;

  // PyConfig.site_import: import the site module at startup (site-packages
  // on sys.path).
  bool import_site = true;

  // PyConfig.write_bytecode: write .pyc files.
  bool write_bytecode = true;

  // Escape hatch: called with the PyConfig after pyscope applied the fields
  // above and before Py_InitializeFromConfig. Return a non-OK status to
  // abort construction with that status; an exception it throws becomes
  // kInternal naming it. Use PyConfig_SetString and friends; pyscope clears
  // the config afterwards, also on failure. The final configuration is
  // checked like the fields above (home, module search paths, and the
  // filesystem_encoding / stdio_encoding it names must exist).
  std::function<absl::Status(PyConfig&)> edit_config;

  // --- Host integration (pyscope/host_options.h). ---

  // Extension modules registered as built-ins before every initialization
  // (re-registered when the runtime starts again). Construction fails with
  // kAlreadyExists for a name given twice or one CPython already has as a
  // built-in, kInvalidArgument for an entry without a valid name or with
  // neither or both of init / definition, and kFailedPrecondition with
  // Adopt() (the host's interpreter has started: too late to register).
  std::vector<BuiltinModule> builtin_modules;

  // Audit hooks installed before every initialization (PySys_AddAuditHook).
  // kFailedPrecondition with Adopt(), where they could never be removed.
  std::vector<AuditHook> audit_hooks;

  // Called, in order, before every Py_InitializeFromConfig, for the other
  // registrations CPython accepts only before the runtime starts
  // (PyMem_SetAllocator, PyImport_ExtendInittab with a table of your own,
  // ...). A non-OK status aborts construction with it. Not called by
  // Adopt().
  std::vector<std::function<absl::Status()>> before_initialize;

  // A virtual environment to run in, as its own python would: the directory
  // holding pyvenv.cfg (made by `python -m venv`, virtualenv or uv). sys.prefix
  // becomes it, sys.base_prefix the interpreter it was made from, and its
  // site-packages (with their .pth files) are on sys.path; no environment
  // variable is read. kNotFound when there is no pyvenv.cfg there;
  // kFailedPrecondition when the environment was made for another Python
  // version than the one pyscope embeds (both named); kInvalidArgument
  // together with home or module_search_paths, or without import_site. For a
  // conda environment, which is a full prefix, set `home` instead.
  std::string virtual_env;

  // What initialization may change in the host process, and CPython 3.9-3.13
  // does with the Python() preset (docs/pitfalls.md has the list per
  // version): the dispositions of SIGPIPE and SIGXFSZ (ignored), the
  // LC_CTYPE locale (set from the environment) and, for the C locale, the
  // LC_CTYPE environment variable (coerced to a UTF-8 locale). When true,
  // pyscope puts each of them back as it was before initialization; SIGINT
  // too, unless install_signal_handlers asks for Python's handler. The
  // isolated default changes none of them either way.
  bool restore_process_state = false;

  // How long Finalize waits for native threads still inside GILGuard
  // scopes to leave them before finalizing anyway (step 2 of
  // ScopedRuntime::Finalize). Negative: kInvalidArgument;
  // absl::InfiniteDuration(): waits for them.
  absl::Duration drain_deadline = absl::Seconds(5);

  // What construction does when an earlier runtime in this process left a
  // hazard for re-initializing CPython: it loaded an extension module known
  // not to survive re-initialization (a later import of it aborts or
  // crashes the process; on 3.12 e.g. _decimal, _datetime, _ctypes; numpy
  // on every version; the list is docs/reliability.md's), or Python daemon
  // threads were still running when it finalized (the next runtime then
  // crashes in a share of runs). See PendingReinitHazards().
  enum class ReinitHazards {
    // Construction fails with kFailedPrecondition naming the hazards;
    // nothing is started. The default.
    kRefuse,
    // Construction calls reinit_warning (or writes to stderr when it is
    // empty) with the same text, then starts CPython anyway.
    kWarnAndTry,
  };
  ReinitHazards reinit_hazards = ReinitHazards::kRefuse;

  // Receives the warning under ReinitHazards::kWarnAndTry, on the
  // constructing thread, before CPython starts. An exception it throws
  // fails construction with kInternal.
  std::function<void(const std::string& warning)> reinit_warning;
};

// Checks `options` without starting anything: kInvalidArgument for an
// unknown preset, a string field (program_name, home, argv,
// module_search_paths, prepend_sys_path) with a NUL byte or invalid UTF-8,
// or a negative drain deadline. ScopedRuntime runs it first; the file system
// checks (standard library, encodings) happen at construction, on the final
// PyConfig. (Also kInvalidArgument: an unknown reinit_hazards value.)
PYSCOPE_API absl::Status ValidateRuntimeOptions(const RuntimeOptions& options);

// Owns the embedded interpreter for its lifetime. Not copyable or movable.
//
// Construction initializes CPython from `options` (PyConfig underneath),
// then releases the GIL. A configuration error becomes pyscope::Error from
// the constructor, or a status from Create(); it never exits the process.
//
// Finalization (Finalize(), or the destructor) runs on the thread that
// constructed the runtime: it closes the attach gate, drains the native
// threads inside guards, ends the sub-interpreters, runs the exit callbacks
// and calls Py_FinalizeEx; Finalize() lists the steps.
//
// Re-initialization: after a runtime that loaded a module known not to
// survive it, or that finalized with Python daemon threads running, a new
// ScopedRuntime is refused with kFailedPrecondition naming them, unless
// options.reinit_hazards says to warn and try anyway. A module counts as
// loaded when it is in the main interpreter's sys.modules at finalization
// or its shared object is mapped; a listed module built into libpython
// (_tracemalloc on 3.9-3.11) imported only inside a sub-interpreter is not
// seen.
//
// One ScopedRuntime at a time: a second live one is Misuse::kSecondRuntime.
// If the host already initialized Python, construction fails with
// kAlreadyExists; use Adopt() instead.
class PYSCOPE_API ScopedRuntime {
 public:
  using ExitCallback = std::function<void()>;

  // Initializes with RuntimeOptions::Isolated(). Throws pyscope::Error.
  [[nodiscard]] explicit ScopedRuntime(
      SourceLocation where = SourceLocation::Current());
  // Initializes from `options`, in this order: claims the process's one
  // runtime; checks what earlier runtimes left (reinit_hazards); validates
  // the options (ValidateRuntimeOptions) and checks that the libpython
  // loaded in the process is the one pyscope was built against
  // (kFailedPrecondition naming both otherwise); runs the registrations
  // CPython accepts only before it starts (builtin_modules, audit_hooks,
  // before_initialize); builds the PyConfig (the preset, the fields above,
  // virtual_env, then edit_config); checks the standard library and the
  // encodings the final PyConfig names; calls Py_InitializeFromConfig;
  // prepends prepend_sys_path; keeps SIGINT at its default disposition when
  // signal handlers are off (see install_signal_handlers); sets up
  // InterruptSignal() (pyscope/interrupt.h); puts the process state back
  // when restore_process_state asks; then releases the GIL
  // (PyEval_SaveThread). When the constructor returns, no thread holds the
  // GIL: the constructing thread uses GILGuard like any other.
  //
  // Throws pyscope::Error with the codes given with the RuntimeOptions
  // fields and ValidateRuntimeOptions, and: kAlreadyExists (a pyscope
  // runtime is live, reported first as Misuse::kSecondRuntime; or the host
  // already initialized Python: use Adopt()); kInternal (a PyStatus error or
  // exit request from CPython, with CPython's message and function); the
  // status edit_config or a before_initialize callback returned; kUnknown (a
  // Python exception while prepending sys.path or initializing _signal;
  // Python is finalized again in that case). The process never exits.
  //
  // Any thread may construct the runtime; that thread becomes the one that
  // must finalize it. `where` records the construction site for
  // diagnostics; leave it defaulted.
  [[nodiscard]] explicit ScopedRuntime(
      const RuntimeOptions& options,
      SourceLocation where = SourceLocation::Current());

  // Non-throwing form: the same steps, returning the status instead of
  // throwing it.
  static absl::StatusOr<std::unique_ptr<ScopedRuntime>> Create(
      const RuntimeOptions& options,
      SourceLocation where = SourceLocation::Current());

  // Adopts an interpreter that the host initialized itself (Py_Initialize*):
  // pyscope's guards work with it. The calling thread's GIL state is left as
  // the host had it: if the host thread holds the GIL (as it does after
  // Py_Initialize), other threads' guards wait until it releases it. Of
  // `options` only drain_deadline takes effect; builtin_modules and
  // audit_hooks must be empty, and before_initialize is not called.
  // kFailedPrecondition if Python is not initialized; kAlreadyExists if a
  // pyscope runtime is live (after Misuse::kSecondRuntime).
  //
  // Finalize() of an adopted runtime closes the gate, drains, ends the
  // sub-interpreters and runs the exit callbacks (taking the GIL with
  // PyGILState_Ensure), but passes no point of no return (the host's
  // interpreter keeps running), notes no re-initialization hazards and does
  // not call Py_FinalizeEx (the host does that). It forgets, without
  // deleting, the thread states pyscope cached: each one pyscope created for
  // another thread is that thread's PyGILState thread state, which the
  // host's Py_FinalizeEx frees. Afterwards pyscope considers the runtime
  // finalized: GetRuntimeState() is kFinalized and cold GILGuards are
  // refused with kUnavailable.
  static absl::StatusOr<std::unique_ptr<ScopedRuntime>> Adopt(
      const RuntimeOptions& options = RuntimeOptions::Isolated(),
      SourceLocation where = SourceLocation::Current());

  ScopedRuntime(const ScopedRuntime&) = delete;
  ScopedRuntime& operator=(const ScopedRuntime&) = delete;

  // Finalizes if not done yet; a failure is written to stderr
  // ("pyscope: ScopedRuntime finalization: ..."). Must run on the
  // constructing thread, outside every guard (see Finalize()).
  ~ScopedRuntime();

  // Finalizes, in this order:
  //   1. closes the attach gate: GetRuntimeState() becomes kFinalizing, and
  //      a cold GILGuard on another native thread is refused with
  //      kUnavailable instead of hanging or ending the thread;
  //   2. waits, GIL released, up to options().drain_deadline for every other
  //      native thread inside a cold-attached GILGuard scope (or in the
  //      middle of attaching) to leave it;
  //   3. ends every live SubInterpreter, newest first, as
  //      SubInterpreter::End() does; a failure is reported in the status;
  //   4. passes the point of no return (not for an adopted runtime): from
  //      here on, a thread that tries to re-attach a thread state pyscope
  //      created for it (the end of an AllowThreads scope, a GILGuard inside
  //      one, the end of a GILGuard that switched interpreters) is ended
  //      with pthread_exit after "pyscope: ending thread ..." is written to
  //      stderr. The finalizing thread itself is exempt while it runs the
  //      exit callbacks, so a callback may use AllowThreads;
  //   5. takes the GIL (the main thread state, or PyGILState_Ensure for an
  //      adopted runtime) and runs the exit callbacks (last added, first
  //      run) while Python still works; then destroys, unrun, the calls
  //      posted to the main thread that never ran (pyscope/main_thread.h);
  //   6. notes what the next runtime in this process will not survive
  //      (extension modules known not to survive re-initialization, Python
  //      daemon threads still running; see RuntimeOptions::ReinitHazards);
  //      not for an adopted runtime;
  //   7. calls Py_FinalizeEx (which joins non-daemon Python threads),
  //      reports a non-zero result, and repairs what Py_FinalizeEx leaves
  //      behind (the built-in module table, the path configuration;
  //      docs/pitfalls.md); not for an adopted runtime. If a sub-interpreter
  //      could not be ended in step 3, Py_FinalizeEx is not called (before
  //      3.13 it would abort the process) and Python stays initialized in
  //      the process;
  //   8. forgets every thread state pyscope cached: RuntimeGeneration()
  //      increases, GetRuntimeState() becomes kFinalized, and a new
  //      ScopedRuntime can initialize Python again in the same process, with
  //      its own options (unless step 7 left Python initialized: its
  //      construction then fails with kAlreadyExists).
  //
  // Returns the first problem, in the order of the steps: kDeadlineExceeded
  // when threads were still inside after the drain deadline (the message
  // names each, with the place its guard was created; finalization went
  // ahead), the status of a sub-interpreter that could not be ended,
  // kInternal when an exit callback threw (its what() is in the message) or
  // Py_FinalizeEx returned non-zero (flushing sys.stdout or sys.stderr
  // failed), kFailedPrecondition when a sub-interpreter still alive kept
  // step 7 from calling Py_FinalizeEx and nothing earlier failed.
  // Idempotent: later calls return the first result.
  //
  // Threads still inside a guard after the deadline, if they later try to
  // take the GIL back through pyscope (the end of an AllowThreads, a nested
  // GILGuard), are ended by stack unwinding as in step 4, as CPython before
  // 3.14 ended daemon threads. (CPython 3.14 parks such threads forever
  // instead, gh-87135; a parked native thread could never be joined, so
  // pyscope never lets its own reach that attach.) A native thread still
  // running Python code when the deadline passes is re-attached by CPython
  // itself: 3.14 parks it, earlier versions end it.
  //
  // Interpreters that Python code created (concurrent.interpreters, 3.14) are
  // not pyscope's: Py_FinalizeEx ends those still open in step 7, after the
  // exit callbacks and atexit, with a RuntimeWarning; close them in an exit
  // callback to avoid it.
  //
  // Preconditions: called on the thread that constructed the runtime
  // (Misuse::kFinalizeOnOtherThread), while that thread is inside no pyscope
  // guard and not attached to Python by other means
  // (Misuse::kFinalizeWhileAttached), and not from inside its own
  // finalization (Misuse::kFinalizeReentered). If the misuse handler
  // returns, Finalize returns kFailedPrecondition and changes nothing (it may
  // be called again correctly). Not thread-safe with itself.
  absl::Status Finalize();

  // Registers `callback` to run during finalization (step 5 of Finalize()),
  // with the GIL held, on the finalizing thread, after every SubInterpreter
  // has been ended and before Py_FinalizeEx (so before atexit functions and
  // before non-daemon threading threads are joined). Exceptions thrown by a
  // callback are caught and reported in Finalize()'s status; a Python error
  // it leaves set is cleared. Thread-safe. Register callbacks while the
  // runtime is running: the list belongs to the process, so one added after
  // Finalize() runs when the next ScopedRuntime finalizes.
  void AddExitCallback(ExitCallback callback);

  // The options this runtime was created with.
  const RuntimeOptions& options() const { return options_; }

  // The main interpreter (valid until finalization).
  PyInterpreterState* main_interpreter() const { return main_interp_; }

  // Whether this runtime adopted a host-initialized interpreter.
  bool adopted() const { return adopted_; }

 private:
  struct Uninitialized {};
  ScopedRuntime(Uninitialized, const RuntimeOptions& options,
                SourceLocation where);
  absl::Status Initialize(bool adopt);

  RuntimeOptions options_;
  SourceLocation where_;
  bool adopted_ = false;
  bool live_ = false;       // this object owns pyscope's running runtime
  bool finalized_ = false;  // Finalize ran; finalize_status_ is its result
  absl::Status finalize_status_;
  PyInterpreterState* main_interp_ = nullptr;
};

// The state of the runtime pyscope manages, for hosts and tests.
enum class RuntimeState {
  // No ScopedRuntime was ever created.
  kUninitialized,
  // A runtime is running (again, once a new ScopedRuntime started).
  kRunning,
  // From the start of Finalize() (the gate is closed) until Py_FinalizeEx
  // returned.
  kFinalizing,
  // Py_FinalizeEx returned: a new ScopedRuntime may start. Also after an
  // adopted runtime's Finalize(), and after a Finalize() that did not call
  // Py_FinalizeEx, although Python is then still initialized.
  kFinalized,
};

// The current RuntimeState. Thread-safe; the result may be stale as soon as
// it returns.
PYSCOPE_API RuntimeState GetRuntimeState();

// What runtimes finalized earlier in this process left that makes
// re-initializing CPython unsafe (see RuntimeOptions::ReinitHazards), one
// entry per hazard, e.g. "extension module _decimal (generation 2)" or
// "2 Python daemon threads running at finalization (generation 4)". Empty
// when none. Thread-safe.
PYSCOPE_API std::vector<std::string> PendingReinitHazards();

// Starts at 0 and is incremented by every initialization and every
// finalization (so it is odd while a runtime runs); thread states cached
// under another generation are never used again. Thread-safe.
PYSCOPE_API uint64_t RuntimeGeneration();

}  // namespace pyscope

#endif  // PYSCOPE_RUNTIME_H_
