// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// SubInterpreter: create an interpreter, enter it from any thread, end it
// safely.
//
//   pyscope::SubInterpreter plugin(pyscope::SubInterpreterOptions::Isolated());
//   std::thread worker([&] {
//     pyscope::GILGuard gil(plugin);       // attach to `plugin`, hold its GIL
//     pyscope::Exec("import sys; print(sys.modules['__main__'])");
//   });
//   worker.join();
//   absl::Status ended = plugin.End();     // also done by the destructor
//
// CPython's own rules here are the hardest to follow: PyGILState_* always
// attaches to the main interpreter; Py_EndInterpreter aborts the process
// ("not the last thread") while another thread state of the interpreter
// exists; Py_FinalizeEx aborts on live sub-interpreters before 3.13; a
// failed Py_NewInterpreterFromConfig on 3.12 leaves the caller detached.
// SubInterpreter turns each of these into a scope or a status. See
// docs/subinterpreters.md for when and how to use sub-interpreters.

#ifndef PYSCOPE_SUB_INTERPRETER_H_
#define PYSCOPE_SUB_INTERPRETER_H_

#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "pyscope/detail/export.h"
#include "pyscope/error.h"
#include "pyscope/gil.h"
#include "pyscope/source_location.h"

namespace pyscope {

// Every field of CPython's PyInterpreterConfig (3.12+), as plain values.
// Before 3.12 only the Legacy() settings exist (Py_NewInterpreter); any
// other setting is refused with kUnimplemented before CPython is called.
// A default-constructed value equals Default().
//
// The free-threaded build (3.13t, 3.14t; detail::compat::kFreeThreaded)
// does not let sub-interpreters load single-phase init extension modules:
// check_multi_interp_extensions = false is refused there with
// kUnimplemented before CPython is called, so Legacy() cannot be created on
// that build. Default() is what works on every build.
struct PYSCOPE_API SubInterpreterOptions {
  enum class Gil {
    kShared,  // share the main interpreter's GIL (every version)
    kOwn,     // a GIL of its own (PEP 684; CPython 3.12+)
  };

  // What SubInterpreter() and pyscope/testing.h's InFreshInterpreter create:
  // the settings of CPython's own Py_NewInterpreter on this build. With a
  // GIL that is Legacy() (3.9+). On the free-threaded build it is Legacy()
  // with check_multi_interp_extensions = true (gh-117649): single-phase init
  // extension modules raise ImportError there, as they do in
  // Py_NewInterpreter's interpreters on that build.
  static SubInterpreterOptions Default();

  // What Py_NewInterpreter gives with a GIL: shared GIL and object
  // allocator, fork, exec, threads and daemon threads allowed, single-phase
  // extension modules allowed, PyGILState_Ensure inside its scopes attaches
  // to it (pygilstate_follows_scope). Works on 3.9-3.14; refused
  // (kUnimplemented) on the free-threaded build, see above.
  static SubInterpreterOptions Legacy();

  // Own GIL and allocator; no fork, exec or daemon threads; only extension
  // modules that support multiple interpreters; entering and leaving never
  // take the main interpreter's GIL (pygilstate_follows_scope = false, so
  // PyGILState_Ensure inside its scopes is not supported). Needs CPython
  // 3.12+. On the free-threaded build there is no GIL to own; the
  // interpreter still gets its own runtime state and the same restrictions.
  static SubInterpreterOptions Isolated();

  // Use the main interpreter's object allocator. Must be false with an own
  // GIL (the shared allocator is protected by the main GIL only).
  bool use_main_obmalloc = true;
  // os.fork() allowed in the interpreter.
  bool allow_fork = true;
  // os.execv() and friends allowed.
  bool allow_exec = true;
  // The threading module may start threads.
  bool allow_threads = true;
  // Daemon threads allowed (they would keep the interpreter from ending).
  bool allow_daemon_threads = true;
  // Refuse extension modules that do not declare multi-interpreter support
  // (ImportError naming the module). Required when use_main_obmalloc is
  // false, and on the free-threaded build (true by default there).
  bool check_multi_interp_extensions =
      !detail::compat::kSubInterpretersLoadSinglePhaseModules;
  // Whose GIL the interpreter runs under: the main interpreter's (kShared)
  // or its own (kOwn, which needs use_main_obmalloc = false).
  Gil gil = Gil::kShared;

  // CPython 3.12+: whether PyGILState_Ensure, called by C code while a
  // thread is inside a scope of this interpreter (a ctypes callback, an
  // extension module's callback), attaches to this interpreter. CPython
  // makes every thread state a thread attaches the thread's PyGILState
  // binding; pyscope then moves the binding back to the thread's main
  // state when each scope ends (so that no thread's binding points at a
  // state that ending the interpreter deletes), which attaches the main
  // interpreter for a moment: it takes the main GIL, about doubles the cost
  // of a scope, and with an own GIL waits for the main interpreter.
  // false: the binding stays on the thread's main state, a scope's entry
  // and exit touch only this interpreter's GIL, and PyGILState_Ensure
  // inside a scope of this interpreter is not supported (CPython's
  // documentation: mixing sub-interpreters and the PyGILState API is
  // unsupported; it deadlocks with a shared GIL, as on every version before
  // 3.12, and runs in the main interpreter with an own GIL). Before 3.12,
  // and with a debug build of CPython, it has no effect (as true).
  // Legacy(): true. Isolated(): false.
  bool pygilstate_follows_scope = true;

  // How long End() waits for scopes on other threads to leave.
  // absl::InfiniteDuration(): until they do. Negative: kInvalidArgument.
  absl::Duration end_deadline = absl::Seconds(5);
};

// Checks `options` against this CPython without creating anything:
// kUnimplemented when a setting needs a newer CPython (3.12 for anything but
// Legacy()) or a build with a GIL (check_multi_interp_extensions = false on
// the free-threaded build), kInvalidArgument for combinations CPython or
// pyscope refuse: use_main_obmalloc = false without
// check_multi_interp_extensions (CPython refuses it too), Gil::kOwn with
// use_main_obmalloc = true, a negative end_deadline (or a `gil` value that
// is not a Gil enumerator). Thread-safe.
PYSCOPE_API absl::Status ValidateSubInterpreterOptions(
    const SubInterpreterOptions& options);

// A sub-interpreter. Not copyable, not movable (guards refer to it).
//
// Creation runs on the calling thread and leaves its thread state exactly as
// it was (detached, or attached to whichever interpreter it was in), also
// when creation fails. It needs a running ScopedRuntime.
//
// Entering: `GILGuard gil(sub);` from any number of threads at once; each
// thread gets a thread state for this interpreter once and keeps it until it
// exits or the interpreter ends. Nesting across interpreters on one thread
// restores each level in order.
//
// Ending: End(), the destructor, or the runtime's finalization, which ends
// every live SubInterpreter (newest first) after its drain step, before the
// exit callbacks. End() lists the steps; none of them reaches
// Py_EndInterpreter's fatal errors.
class PYSCOPE_API SubInterpreter {
 public:
  // SubInterpreterOptions::Default() (Legacy() on builds with a GIL).
  // Throws pyscope::Error.
  [[nodiscard]] SubInterpreter();
  // Throws pyscope::Error with the status Create would return.
  [[nodiscard]] explicit SubInterpreter(const SubInterpreterOptions& options);

  // Non-throwing form. Creates the interpreter on the calling thread
  // (Py_NewInterpreter for the Legacy() settings before 3.12,
  // Py_NewInterpreterFromConfig from 3.12). The options are validated first
  // (ValidateSubInterpreterOptions: kUnimplemented, kInvalidArgument), before
  // CPython is called. Creation attaches the calling thread like a
  // GILGuard() would (to the interpreter it is in, else the main one), so it
  // needs a running ScopedRuntime: kFailedPrecondition or kUnavailable
  // otherwise, as for GILGuard. A failure reported by CPython is kInternal
  // with CPython's message; a Python exception it left set is cleared. The
  // thread state CPython created for the new interpreter on the calling
  // thread becomes that thread's cached thread state for it.
  static absl::StatusOr<std::unique_ptr<SubInterpreter>> Create(
      const SubInterpreterOptions& options);

  SubInterpreter(const SubInterpreter&) = delete;
  SubInterpreter& operator=(const SubInterpreter&) = delete;

  // Ends the interpreter if that has not happened; a failure is written to
  // stderr (the interpreter is then left to the runtime's finalization).
  ~SubInterpreter();

  // Ends the interpreter, from any thread that is not inside a scope of this
  // interpreter (kFailedPrecondition otherwise), in this order:
  //   1. refuses new entries (GILGuard(sub)) with kUnavailable;
  //   2. waits up to options().end_deadline for scopes on other threads to
  //      leave; if they do not, returns kDeadlineExceeded naming them, and
  //      the interpreter stays alive with new entries still refused (call
  //      End() again later);
  //   3. attaches the calling thread to the interpreter, with its own cached
  //      thread state there if it has one (which keeps threading's
  //      bookkeeping for that thread consistent), else a new one;
  //   4. deletes the other threads' cached thread states for the
  //      interpreter; then, if the interpreter imported threading, runs
  //      threading._shutdown(): threading's exit hooks (which stop
  //      concurrent.futures workers) and a join of the non-daemon Python
  //      threads started inside;
  //   5. if the interpreter still has thread states that pyscope did not
  //      create (running daemon threads, or states made with
  //      PyThreadState_New by other code), returns kFailedPrecondition
  //      without ending it: that is where Py_EndInterpreter would abort the
  //      process with "not the last thread". The interpreter can then be
  //      entered again; call End() again once those threads stopped;
  //   6. calls Py_EndInterpreter with the calling thread's thread state, and
  //      puts the calling thread back exactly as it was (detached, or
  //      attached where it was).
  //
  // Also kUnavailable if another thread is running End() at the same time,
  // or if the runtime's finalization is past its point of no return;
  // kResourceExhausted if PyThreadState_New fails. An interpreter whose
  // runtime has been finalized counts as ended. Idempotent once it
  // succeeded: later calls return OK.
  absl::Status End();

  // CPython's interpreter id (PyInterpreterState_GetID); stays valid after
  // End().
  int64_t id() const noexcept { return id_; }

  // Whether the interpreter is alive (not ended).
  bool alive() const;

  // Whether the interpreter has its own GIL.
  bool own_gil() const noexcept {
    return options_.gil == SubInterpreterOptions::Gil::kOwn;
  }

  // The options the interpreter was created with.
  const SubInterpreterOptions& options() const noexcept { return options_; }

  // The interpreter state (null after End()).
  PyInterpreterState* interpreter_state() const;

  // Runs `code` in this interpreter's __main__ on the calling thread (enters
  // and leaves the interpreter around it). Throws pyscope::PythonError for a
  // Python exception and pyscope::Error if the interpreter cannot be entered.
  void Exec(std::string_view code);

  // Like Exec, returning the error as a status.
  absl::Status TryExec(std::string_view code);

  // Calls `fn()` inside this interpreter on the calling thread (within a
  // GILGuard(*this)) and returns its result. `fn` runs with the GIL held;
  // the thread-safety analysis checks the body of a lambda on its own and
  // does not see that, so annotate it (`[]() PYSCOPE_REQUIRES_GIL { ... }`)
  // or start it with PYSCOPE_ASSERT_GIL_HELD() (or a GILGuard(), which
  // nests). Exceptions propagate after the interpreter is left.
  template <typename Fn>
  auto Call(Fn&& fn) -> decltype(std::forward<Fn>(fn)()) {
    GILGuard gil(*this);
    return std::forward<Fn>(fn)();
  }

 private:
  friend class GILGuard;         // enters through the control block
  friend class InterpreterView;  // refers to the control block

  struct Uncreated {};
  SubInterpreter(Uncreated, const SubInterpreterOptions& options);
  absl::Status CreateInterpreter();

  SubInterpreterOptions options_;
  int64_t id_ = -1;
  std::shared_ptr<detail::InterpControl> control_;
};

}  // namespace pyscope

#endif  // PYSCOPE_SUB_INTERPRETER_H_
