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
#include "pyscope/source_location.h"

namespace pyscope {

// How to configure the interpreter, as plain C++ values. Copied by
// ScopedRuntime, never consumed or modified. Strings are UTF-8.
struct PYSCOPE_API RuntimeOptions {
  enum class Preset {
    // PyConfig_InitIsolatedConfig: no environment variables, no user site
    // directory, no script directory or current directory on sys.path, no
    // signal handlers, argv not parsed. The default: an embedded interpreter
    // should not change behaviour with the user's shell.
    kIsolated,
    // PyConfig_InitPythonConfig: behaves like the `python` program (reads
    // PYTHON* environment variables, user site, signal handlers), except
    // that argv is still never parsed as options.
    kPython,
  };

  // The default: Preset::kIsolated.
  static RuntimeOptions Isolated();
  // Preset::kPython with install_signal_handlers, use_environment and
  // user_site_directory on.
  static RuntimeOptions Python();

  Preset preset = Preset::kIsolated;

  // sys.executable / the program name CPython uses to compute paths. Empty:
  // CPython's default.
  std::string program_name;

  // PYTHONHOME equivalent: the prefix holding lib/pythonX.Y. Empty: computed
  // by CPython from its build prefix or program_name. If set and the
  // standard library is not under it, construction fails with kNotFound
  // naming the paths tried (the process never exits).
  std::string home;

  // sys.argv, exactly as given. Never parsed as interpreter options.
  std::vector<std::string> argv;

  // When non-empty: exactly sys.path, replacing the computed path. It must
  // contain the standard library (kNotFound otherwise, naming the paths).
  // The site module (import_site) still appends the site-packages
  // directories it finds, as in any interpreter; set import_site = false
  // for a sys.path that is this list and nothing else.
  std::vector<std::string> module_search_paths;

  // Directories inserted at the front of the computed sys.path (ignored
  // when module_search_paths is set, which is exact).
  std::vector<std::string> prepend_sys_path;

  // Install Python's SIGINT handler (KeyboardInterrupt) and ignore SIGPIPE,
  // as the python program does. Off for kIsolated: a host owns its signals.
  bool install_signal_handlers = false;

  // Read PYTHON* environment variables. Off for kIsolated.
  bool use_environment = false;

  // Add the user site-packages directory. Off for kIsolated.
  bool user_site_directory = false;

  // Import the site module at startup (site-packages on sys.path).
  bool import_site = true;

  // Write .pyc files.
  bool write_bytecode = true;

  // Escape hatch: called with the PyConfig after pyscope applied the fields
  // above and before Py_InitializeFromConfig. Return a non-OK status to
  // abort construction with that status. Use PyConfig_SetString and
  // friends; pyscope clears the config afterwards.
  std::function<absl::Status(PyConfig&)> edit_config;

  // How long Finalize waits for native threads still inside GILGuard
  // scopes to leave them before finalizing anyway (see ScopedRuntime).
  absl::Duration drain_deadline = absl::Seconds(5);
};

// Owns the embedded interpreter for its lifetime. Not copyable or movable.
//
// Construction initializes CPython from `options` (PyConfig underneath),
// then releases the GIL. A configuration error becomes pyscope::Error from
// the constructor, or a status from Create(); it never exits the process.
//
// Finalization (Finalize(), or the destructor), on the thread that
// constructed the runtime:
//   1. closes the attach gate: GILGuard on other native threads is refused
//      with kUnavailable instead of hanging or ending the thread;
//   2. waits, GIL released, up to options.drain_deadline for native threads
//      already inside GILGuard scopes to leave them;
//   3. takes the GIL and runs the exit callbacks (last added, first run)
//      while Python still works; then destroys, unrun, the calls posted to
//      the main thread that never ran (pyscope/main_thread.h);
//   4. calls Py_FinalizeEx (which joins non-daemon Python threads) and
//      reports a non-zero result;
//   5. forgets every thread state pyscope cached, so a new ScopedRuntime can
//      initialize Python again in the same process.
// Threads still inside a guard after the deadline are named in the returned
// status (kDeadlineExceeded); if they later try to take the GIL back they
// are ended by stack unwinding, exactly as CPython ends daemon threads.
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
  // Initializes from `options`. Throws pyscope::Error.
  [[nodiscard]] explicit ScopedRuntime(
      const RuntimeOptions& options,
      SourceLocation where = SourceLocation::Current());

  // Non-throwing form.
  static absl::StatusOr<std::unique_ptr<ScopedRuntime>> Create(
      const RuntimeOptions& options,
      SourceLocation where = SourceLocation::Current());

  // Adopts an interpreter that the host initialized itself (Py_Initialize):
  // pyscope's guards work with it, but finalization closes the gate, drains,
  // runs exit callbacks and forgets pyscope's cached thread states without
  // calling Py_FinalizeEx (the host does that). The caller's GIL state is
  // left as the host had it. kFailedPrecondition if Python is not
  // initialized; kAlreadyExists if a pyscope runtime is live.
  static absl::StatusOr<std::unique_ptr<ScopedRuntime>> Adopt(
      const RuntimeOptions& options = RuntimeOptions::Isolated(),
      SourceLocation where = SourceLocation::Current());

  ScopedRuntime(const ScopedRuntime&) = delete;
  ScopedRuntime& operator=(const ScopedRuntime&) = delete;

  // Finalizes if not done yet; a failure is written to stderr.
  ~ScopedRuntime();

  // Finalizes as described above. Idempotent: later calls return the first
  // result. Must be called on the constructing thread
  // (Misuse::kFinalizeOnOtherThread) while it is not inside a guard
  // (Misuse::kFinalizeWhileAttached).
  absl::Status Finalize();

  // Registers `callback` to run during finalization, with the GIL held, on
  // the finalizing thread, before Py_FinalizeEx. Exceptions thrown by a
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
  kUninitialized,  // no ScopedRuntime was ever created
  kRunning,
  kFinalizing,  // the gate is closed
  kFinalized,   // Py_FinalizeEx returned (a new ScopedRuntime may start)
};
PYSCOPE_API RuntimeState GetRuntimeState();

// Incremented by every initialization and finalization; thread states
// cached under an older generation are never used again.
PYSCOPE_API uint64_t RuntimeGeneration();

}  // namespace pyscope

#endif  // PYSCOPE_RUNTIME_H_
