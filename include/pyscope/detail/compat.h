// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Every difference between the supported CPython versions (3.9-3.14) and
// build variants (the free-threaded build, Py_GIL_DISABLED) that pyscope
// depends on, as small named functions and constants. Logic code calls these
// and never tests PY_VERSION_HEX or Py_GIL_DISABLED itself.

#ifndef PYSCOPE_DETAIL_COMPAT_H_
#define PYSCOPE_DETAIL_COMPAT_H_

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <cstddef>

#include "pyscope/annotations.h"

#if PY_VERSION_HEX < 0x03090000
#error "pyscope supports CPython 3.9 and newer"
#endif

namespace pyscope::detail::compat {

// The Python version the headers describe, as (major, minor).
inline constexpr int kPythonMinor = PY_MINOR_VERSION;

// --- Build variants ---

// The free-threaded build (PEP 703; supported from 3.14, PEP 779): CPython
// configured with --disable-gil (python3.13t, python3.14t), where
// Py_GIL_DISABLED is defined. Attaching a thread state there ("holding the
// GIL" in pyscope's words) does not keep other threads from running Python.
inline constexpr bool kFreeThreaded =
#ifdef Py_GIL_DISABLED
    true;
#else
    false;
#endif

// The standard library's directory under <prefix>/lib, and the zip archive
// CPython also looks for there, as Modules/getpath.py names them: with the
// suffix ABI_THREAD = "t" on the free-threaded build (python3.14t,
// python314t.zip), without it otherwise (python3.14, python314.zip).
#define PYSCOPE_DETAIL_STR2(x) #x
#define PYSCOPE_DETAIL_STR(x) PYSCOPE_DETAIL_STR2(x)
#ifdef Py_GIL_DISABLED
#define PYSCOPE_DETAIL_ABI_THREAD "t"
#else
#define PYSCOPE_DETAIL_ABI_THREAD ""
#endif
inline constexpr char kStdlibDirName[] =
    "python" PYSCOPE_DETAIL_STR(PY_MAJOR_VERSION) "." PYSCOPE_DETAIL_STR(
        PY_MINOR_VERSION) PYSCOPE_DETAIL_ABI_THREAD;
inline constexpr char kStdlibZipName[] =
    "python" PYSCOPE_DETAIL_STR(PY_MAJOR_VERSION)
        PYSCOPE_DETAIL_STR(PY_MINOR_VERSION) PYSCOPE_DETAIL_ABI_THREAD ".zip";
#undef PYSCOPE_DETAIL_ABI_THREAD
#undef PYSCOPE_DETAIL_STR
#undef PYSCOPE_DETAIL_STR2

// Whether an attached thread keeps every other thread of its interpreter
// from running Python (the GIL's mutual exclusion). False on the
// free-threaded build: there an attached thread only holds up
// stop-the-world pauses (the garbage collector, some sys and gc functions),
// which wait until every other thread of the interpreter detaches or
// reaches a safe point -- the reason AllowThreads still detaches there.
// (The free-threaded build can turn a GIL on at run time, PYTHON_GIL=1 or an
// extension module without Py_mod_gil, but nothing guarantees it.)
inline constexpr bool kGilExcludesOtherThreads = !kFreeThreaded;

// Whether a sub-interpreter may import single-phase init extension modules
// (PyInterpreterConfig.check_multi_interp_extensions = 0). The free-threaded
// build refuses to create such an interpreter ("The free-threaded build does
// not support single-phase init extension modules in subinterpreters",
// init_interp_settings in Python/pylifecycle.c, gh-117649); its own
// Py_NewInterpreter uses check_multi_interp_extensions = 1 there.
inline constexpr bool kSubInterpretersLoadSinglePhaseModules = !kFreeThreaded;

// --- CPython versions ---

// The thread state attached to the calling thread, or null; never a fatal
// error. Before 3.12 CPython keeps a single process-wide "current" pointer
// (the GIL holder's thread state, `_PyRuntime.gilstate.tstate_current`);
// from 3.12 it is a thread-local. Comparing the result with a thread state
// this thread owns is correct on both: only the GIL holder can store its own
// pointer there. Never dereference the result unless it is known to be ours.
// PyThreadState_GetUnchecked is public from 3.13; its earlier name
// _PyThreadState_UncheckedGet is deprecated from 3.14 (a warning, an error
// under -Werror) and used only where the public name does not exist.
inline PyThreadState* CurrentThreadStateUnchecked() {
#if PY_VERSION_HEX >= 0x030D0000
  return PyThreadState_GetUnchecked();
#else
  return _PyThreadState_UncheckedGet();
#endif
}

// Before 3.12 only (where the current thread state is the process-wide GIL
// holder's): whether `tstate`, a non-null result of
// CurrentThreadStateUnchecked() that pyscope does not know, was created on
// the calling thread (PyThreadState.thread_id, set by PyThreadState_New
// and by threading's bootstrap), so that a state the host made by hand and
// attached here is recognised as attached. Reading the field of a state
// another thread holds is a read of memory that thread may free at that
// moment (it runs only in that race; it never writes); from 3.12 the
// question never arises.
inline bool CreatedOnThisThread(PyThreadState* tstate) {
#if PY_VERSION_HEX >= 0x030C0000
  (void)tstate;
  return false;
#else
  return tstate->thread_id == PyThread_get_thread_ident();
#endif
}

// True while CPython's own Py_FinalizeEx is running (or has run) in this
// runtime. Public from 3.13 (`Py_IsFinalizing`), private before.
inline bool IsFinalizing() {
#if PY_VERSION_HEX >= 0x030D0000
  return Py_IsFinalizing() != 0;
#else
  return _Py_IsFinalizing() != 0;
#endif
}

// From 3.12 the "current thread state" is a C thread-local, so a non-null
// CurrentThreadStateUnchecked() always belongs to the calling thread; before,
// it is the process-wide GIL holder's (see CurrentThreadStateUnchecked).
inline constexpr bool kCurrentThreadStateIsThreadLocal =
    PY_VERSION_HEX >= 0x030C0000;

// From 3.14, Py_FinalizeEx frees every interned string of the main
// interpreter, also the immortal ones that C code interned
// (PyUnicode_InternFromString, PyUnicode_InternInPlace) and still holds:
// Py_INCREF does not keep an immortal object alive (gh-113190). Before,
// those were leaked at finalization, so a pointer kept across a
// re-initialization happened to stay valid. pyscope keeps no Python object
// across runtimes; a host must drop such pointers in an exit callback.
inline constexpr bool kFinalizeFreesInternedStrings =
    PY_VERSION_HEX >= 0x030E0000;

// From 3.14 (and 3.13.8, where the change was backported), a thread other
// than the finalizing one that attaches after Py_FinalizeEx marked the
// runtime as finalizing (PyEval_RestoreThread, PyGILState_Ensure, the
// evaluation loop taking the GIL back) is parked forever
// (PyThread_hang_thread) instead of being ended with pthread_exit
// (gh-87135). pyscope's own attaches never reach it with a thread state it
// created for a native thread: the gate refuses cold attachments once
// finalization began, and past its point of no return a re-attachment ends
// the thread by unwinding instead (src/gate.h, src/attach.cc). Decided from
// the headers: the first ScopedRuntime refuses a libpython whose version,
// patch level included, is not the headers' (src/build_info.cc), so a
// program built for 3.13.8 never runs on 3.13.7's behaviour.
inline constexpr bool kLateAttachHangsThread = PY_VERSION_HEX >= 0x030D0800;

// Whether CPython, asked now to attach a thread state on a thread other
// than the finalizing one, would end the thread with pthread_exit inside
// the call: before gh-87135 (3.9-3.13.7), once Py_FinalizeEx has marked the
// runtime as finalizing. From then on a caller's bookkeeping after the
// attach call never runs. (From 3.14 the thread is parked instead.) Safe
// without an attached thread state.
inline bool AttachWouldEndThread() {
  return !kLateAttachHangsThread && IsFinalizing();
}

// From 3.15, threading.Lock.acquire() raises PythonFinalizationError instead
// of waiting once finalization got to where no other thread can attach, so
// could ever release the lock (GH-135991). Not in 3.14.7: there the wait
// goes on (with a timeout it returns False). Untested here (no 3.15).
inline constexpr bool kLockAcquireRaisesAtFinalization =
    PY_VERSION_HEX >= 0x030F0000;

// PEP 741 (3.14): the running configuration can be read by option name
// (PyConfig_Get, PyConfig_GetInt) and initialization configured by name
// (PyInitConfig).
inline constexpr bool kHasConfigGet = PY_VERSION_HEX >= 0x030E0000;

// Reads the integer (or boolean) option `name` of the running configuration
// into *value (PEP 741's PyConfig_GetInt). False when this CPython has no
// PyConfig_GetInt (before 3.14) or the option does not exist (the error is
// cleared). Requires the GIL.
inline bool GetConfigInt(const char* name, int* value) PYSCOPE_REQUIRES_GIL {
#if PY_VERSION_HEX >= 0x030E0000
  if (PyConfig_GetInt(name, value) == 0) return true;
  PyErr_Clear();
  return false;
#else
  (void)name;
  (void)value;
  return false;
#endif
}

// PEP 734 (3.14): the concurrent.interpreters module, which creates and runs
// sub-interpreters from Python code (whence "_interpreters module"). It
// refuses to close or run interpreters it did not create, such as
// pyscope's SubInterpreters (whence "C-API"), and Py_FinalizeEx ends the
// ones left open (with a RuntimeWarning, 3.13+).
inline constexpr bool kHasConcurrentInterpreters = PY_VERSION_HEX >= 0x030E0000;

// From 3.12, PyThreadState_Swap between thread states of interpreters with
// different GILs releases one GIL and takes the other (gh-104812); before,
// every interpreter shares one GIL and a swap is a pointer exchange.
inline constexpr bool kSwapSwitchesGil = PY_VERSION_HEX >= 0x030C0000;

// Interpreters with their own GIL (PEP 684) exist from 3.12.
inline constexpr bool kHasPerInterpreterGil = PY_VERSION_HEX >= 0x030C0000;

// From 3.12, attaching a thread state makes it the OS thread's PyGILState
// thread state (tstate_activate -> bind_gilstate_tstate in
// Python/pystate.c), so PyGILState_Ensure inside a sub-interpreter scope
// stays in that sub-interpreter. The binding stays after the thread
// detaches; when a sub-interpreter scope ends detached, pyscope moves it to
// the state the thread returns to (the one parked by an enclosing
// AllowThreads, else its main-interpreter state), so that no thread's slot
// points at a state another thread may delete by ending the interpreter.
// Before 3.12 the binding is made only when a thread's first state is
// created, and pyscope creates the main-interpreter one first.
inline constexpr bool kAttachRebindsGilState = PY_VERSION_HEX >= 0x030C0000;

// The settings of a new sub-interpreter, as CPython 3.12's
// PyInterpreterConfig has them (pyscope::SubInterpreterOptions is the public
// face).
struct InterpreterSettings {
  bool use_main_obmalloc = true;
  bool allow_fork = true;
  bool allow_exec = true;
  bool allow_threads = true;
  bool allow_daemon_threads = true;
  bool check_multi_interp_extensions = false;
  bool own_gil = false;
};

// Creates a sub-interpreter with `settings` and makes its first thread
// state current (*created); the caller holds the GIL of its interpreter.
// 3.12+: Py_NewInterpreterFromConfig. Before: Py_NewInterpreter, which knows
// only the defaults of InterpreterSettings (the caller checks that first).
// On failure returns the PyStatus (before 3.12 a generic error).
inline PyStatus NewInterpreter(const InterpreterSettings& settings,
                               PyThreadState** created) PYSCOPE_REQUIRES_GIL {
#if PY_VERSION_HEX >= 0x030C0000
  PyInterpreterConfig config = {};
  config.use_main_obmalloc = settings.use_main_obmalloc ? 1 : 0;
  config.allow_fork = settings.allow_fork ? 1 : 0;
  config.allow_exec = settings.allow_exec ? 1 : 0;
  config.allow_threads = settings.allow_threads ? 1 : 0;
  config.allow_daemon_threads = settings.allow_daemon_threads ? 1 : 0;
  config.check_multi_interp_extensions =
      settings.check_multi_interp_extensions ? 1 : 0;
  config.gil = settings.own_gil ? PyInterpreterConfig_OWN_GIL
                                : PyInterpreterConfig_SHARED_GIL;
  return Py_NewInterpreterFromConfig(created, &config);
#else
  (void)settings;
  *created = Py_NewInterpreter();
  if (*created == nullptr) return PyStatus_Error("Py_NewInterpreter failed");
  return PyStatus_Ok();
#endif
}

// How a runtime without Python signal handlers (pyscope's default) keeps
// CPython's KeyboardInterrupt handler off SIGINT for good. CPython's _signal
// module installs it when it is first initialized in the main interpreter
// while SIGINT is at SIG_DFL, whatever PyConfig.install_signal_handlers
// says (Modules/signalmodule.c). pyscope initializes _signal at start-up
// and then leaves Python's view of SIGINT:
//  - before 3.10, at SIG_DFL: PyErr_SetInterrupt() compares handler
//    pointers and ignores it;
//  - from 3.10, at None ("not installed from Python", as when the host has
//    its own handler): PyErr_SetInterrupt(Ex) compares a SIG_DFL handler
//    with SIG_IGN through PyObject_RichCompareBool, which crashes on a
//    thread without a thread state (compare_handler in signalmodule.c);
//    with None it trips the signal, which CPython then reports as
//    "Signal 2 ignored due to race condition" and drops.
// In both the process-level disposition stays SIG_DFL.
inline constexpr bool kSigintViewIsNone = PY_VERSION_HEX >= 0x030A0000;

// Before 3.13, threading._shutdown() (run by Py_FinalizeEx) waits for the
// thread that imported `threading` first (its _main_thread, whose lock is
// released only when that thread's state is deleted) also when that thread
// is not the finalizing one; 3.13 skips a _main_thread that is not the
// calling thread.
inline constexpr bool kThreadingShutdownWaitsForImporter =
    PY_VERSION_HEX < 0x030D0000;

// 3.12 to 3.14: whether a thread state can be kept from taking the thread's
// PyGILState binding when it is attached. CPython binds every state it
// attaches unless the state's `_status.bound_gilstate` bit is already set
// (tstate_activate in Python/pystate.c); pyscope sets that bit on the
// sub-interpreter states it creates for interpreters whose scopes should
// leave the binding on the thread's main state, and clears it again
// before any such state is deleted (tstate_delete_common would otherwise
// clear the deleting thread's binding). Not on debug builds of CPython,
// whose assertions check the bit against the binding; before 3.12 there is
// nothing to keep (attaching does not bind); 3.15 is not checked here.
inline constexpr bool kCanKeepGilStateBinding =
#if PY_VERSION_HEX >= 0x030C0000 && PY_VERSION_HEX < 0x030F0000 && \
    !defined(Py_DEBUG)
    true;
#else
    false;
#endif

// Sets (keep) or clears the mark described at kCanKeepGilStateBinding.
inline void KeepGilStateBinding(PyThreadState* tstate, bool keep) {
#if PY_VERSION_HEX >= 0x030C0000 && PY_VERSION_HEX < 0x030F0000 && \
    !defined(Py_DEBUG)
  tstate->_status.bound_gilstate = keep ? 1 : 0;
#else
  (void)tstate;
  (void)keep;
#endif
}

// Fetches and clears the raised exception as a single (normalized) object,
// or returns null when none is set. Requires the GIL.
inline PyObject* FetchRaisedException() PYSCOPE_REQUIRES_GIL {
#if PY_VERSION_HEX >= 0x030C0000
  return PyErr_GetRaisedException();
#else
  PyObject *type = nullptr, *value = nullptr, *traceback = nullptr;
  PyErr_Fetch(&type, &value, &traceback);
  if (type == nullptr) return nullptr;
  PyErr_NormalizeException(&type, &value, &traceback);
  if (traceback != nullptr && value != nullptr) {
    PyException_SetTraceback(value, traceback);
  }
  Py_XDECREF(type);
  Py_XDECREF(traceback);
  return value;
#endif
}

// `PyConfig.safe_path` (do not prepend the script directory or the current
// directory to sys.path) exists from 3.11. Before that, an embedded
// interpreter initialized from a PyConfig never prepends either unless
// `Py_RunMain` runs a script, so there is nothing to set.
inline void SetSafePath(PyConfig* config, bool safe) {
#if PY_VERSION_HEX >= 0x030B0000
  config->safe_path = safe ? 1 : 0;
#else
  (void)config;
  (void)safe;
#endif
}

// An extension module that does not survive re-initialization of CPython
// in one process: once a generation loaded it, importing it again in a
// later generation aborts or crashes the process (its C-level static state
// outlives Py_FinalizeEx). Measured with a raw Py_InitializeFromConfig /
// import / Py_FinalizeEx loop (tests/reinit/raw_reinit.c, run by
// tests/reliability/reinit_soak.cc; docs/reliability.md has the outcomes):
// 3.9.18 and 3.10.13 survive every stdlib extension module but
// _tracemalloc (a clean RuntimeError at import), 3.13.0 every one; 3.11.7
// fails in _tracemalloc too and (pyenv and Debian's) aborts in
// _zoneinfo; 3.12.1 aborts or crashes in the modules listed for it. numpy (1.x,
// Debian's python3-numpy) is listed for every version: NumPy states it cannot
// be reloaded in a process.
struct ReinitUnsafeModule {
  const char* module;         // the name in sys.modules
  const char* shared_object;  // the file's name up to the first '.'
};

// The modules known not to survive re-initialization on this CPython
// (minor version); `*count` receives their number.
inline const ReinitUnsafeModule* ReinitUnsafeModules(size_t* count) {
#if PY_VERSION_HEX >= 0x030C0000 && PY_VERSION_HEX < 0x030D0000
  static constexpr ReinitUnsafeModule kModules[] = {
      {"numpy", "_multiarray_umath"},
      {"_asyncio", "_asyncio"},
      {"_ctypes", "_ctypes"},
      {"_datetime", "_datetime"},
      {"_decimal", "_decimal"},
      {"_elementtree", "_elementtree"},
      {"_hashlib", "_hashlib"},
      {"_sqlite3", "_sqlite3"},
      {"_ssl", "_ssl"},
      {"_zoneinfo", "_zoneinfo"},
  };
#elif PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
  static constexpr ReinitUnsafeModule kModules[] = {
      {"numpy", "_multiarray_umath"},
      {"_tracemalloc", "_tracemalloc"},
      {"_zoneinfo", "_zoneinfo"},
  };
#elif PY_VERSION_HEX < 0x030B0000
  // _tracemalloc: "the tracemalloc module has been unloaded" (a
  // RuntimeError at import) in every later generation; Py_FinalizeEx marks
  // it finalized for good (Modules/_tracemalloc.c; 3.12 keeps its state in
  // the runtime and survives).
  static constexpr ReinitUnsafeModule kModules[] = {
      {"numpy", "_multiarray_umath"},
      {"_tracemalloc", "_tracemalloc"},
  };
#else
  static constexpr ReinitUnsafeModule kModules[] = {
      {"numpy", "_multiarray_umath"},
  };
#endif
  *count = sizeof(kModules) / sizeof(kModules[0]);
  return kModules;
}

// A module definition slot declaring support for interpreters with their
// own GIL (Py_mod_multiple_interpreters = Py_MOD_PER_INTERPRETER_GIL_SUPPORTED,
// 3.12+); before 3.12 the terminating {0, nullptr}. Put it last, just before
// the list's own terminator.
inline PyModuleDef_Slot PerInterpreterGilSupportedSlot() {
#if PY_VERSION_HEX >= 0x030C0000
  return {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED};
#else
  return {0, nullptr};
#endif
}

// A module definition slot declaring that the module runs safely without
// the GIL (Py_mod_gil = Py_MOD_GIL_NOT_USED, 3.13+; ignored by the builds
// with a GIL); before 3.13 the terminating {0, nullptr}. On the
// free-threaded build, importing an extension module without it turns the
// GIL on for the rest of the process, with a RuntimeWarning
// (_PyImport_CheckGILForModule in Python/import.c). Put it last, just
// before the list's own terminator.
inline PyModuleDef_Slot GilNotUsedSlot() {
#if PY_VERSION_HEX >= 0x030D0000
  return {Py_mod_gil, Py_MOD_GIL_NOT_USED};
#else
  return {0, nullptr};
#endif
}

#if PY_VERSION_HEX >= 0x030B0000
extern "C" PyAPI_FUNC(void) _PyPathConfig_ClearGlobal(void);
#endif

// After Py_FinalizeEx, CPython keeps the path configuration of the runtime
// that ended (program name, home, prefixes, executable, module search path)
// in a process-wide global, and the next initialization takes every field
// its PyConfig leaves unset from it (3.11+: _PyPathConfig_ReadGlobal in
// Python/pathconfig.c; 3.9/3.10: the path calculation starts from it; seen
// on 3.9.18-3.13.0: a runtime started after one with a virtual environment
// still had its sys.executable, sys.prefix and site-packages). Forgets them.
// 3.11+ export _PyPathConfig_ClearGlobal (declared in an internal header
// only); on 3.9/3.10 Py_SetPath(NULL) frees and clears every field of
// _Py_path_config (pathconfig_clear in Python/pathconfig.c).
inline void ForgetPathConfig() {
#if PY_VERSION_HEX >= 0x030B0000
  _PyPathConfig_ClearGlobal();
#else
  Py_SetPath(nullptr);
#endif
}

// Simulates the arrival of signal `signum` for Python's signal handling
// (async-signal-safe): PyErr_SetInterruptEx exists from 3.10. Before, only
// SIGINT can be simulated (PyErr_SetInterrupt); returns -1 for the others
// and the caller uses `cpython_handler`, the C handler CPython installed for
// `signum` (which does the same: record the signal, wake the eval loop).
inline int SimulateSignal(int signum, void (*cpython_handler)(int)) {
#if PY_VERSION_HEX >= 0x030A0000
  (void)cpython_handler;
  return PyErr_SetInterruptEx(signum);
#else
  if (cpython_handler == nullptr) return -1;
  cpython_handler(signum);
  return 0;
#endif
}

// Py_FinalizeEx frees the table PyImport_AppendInittab/ExtendInittab made
// but leaves PyImport_Inittab pointing at it up to 3.13 (checked on
// 3.9.18-3.13.0: the pointer is unchanged after finalization), so the next
// initialization, and the next AppendInittab, read freed memory. 3.14 has
// _PyImport_Fini2 to put the built-in table back, but nothing calls it
// (3.14.7: Python/import.c), so the extended table stays installed with the
// previous runtime's entries. pyscope puts the table back on every version.
inline constexpr bool kFinalizeResetsInittab = false;
// --- Differences the extras depend on (trace.h, main_thread.h, ...) ---

// PyEval_SetTraceAllThreads / PyEval_SetProfileAllThreads (every thread
// state of the calling thread's interpreter) exist from 3.12.
inline constexpr bool kHasTraceAllThreads = PY_VERSION_HEX >= 0x030C0000;

// Installs `func` as the trace (or, with `profile`, the profile) function of
// every thread state of the calling thread's interpreter. Only called when
// kHasTraceAllThreads; before 3.12 it does nothing. Requires the GIL.
inline void SetTraceAllThreads(bool profile, Py_tracefunc func,
                               PyObject* arg) PYSCOPE_REQUIRES_GIL {
#if PY_VERSION_HEX >= 0x030C0000
  if (profile) {
    PyEval_SetProfileAllThreads(func, arg);
  } else {
    PyEval_SetTraceAllThreads(func, arg);
  }
#else
  (void)profile;
  (void)func;
  (void)arg;
#endif
}

// Raises `exception` (a normalized exception object; the reference is
// stolen) as the current exception: the inverse of FetchRaisedException.
// Requires the GIL.
inline void RestoreRaisedException(PyObject* exception) PYSCOPE_REQUIRES_GIL {
#if PY_VERSION_HEX >= 0x030C0000
  PyErr_SetRaisedException(exception);
#else
  PyObject* type = reinterpret_cast<PyObject*>(Py_TYPE(exception));
  Py_INCREF(type);
  PyErr_Restore(type, exception, PyException_GetTraceback(exception));
#endif
}

// From 3.13, Py_FinalizeEx on the main thread resumes the main
// interpreter's initial thread state (runtime->main_tstate, resolve_final_
// tstate in Python/pylifecycle.c), which PyOS_AfterFork_Child does not
// update: in the child of a fork from another thread, that state was
// deleted, and finalizing there is a use after free.
inline constexpr bool kFinalizeResumesInitialThreadState =
    PY_VERSION_HEX >= 0x030D0000;

// From 3.12, Py_AddPendingCall always queues the call for the main thread
// of the main interpreter and needs no thread state. Before, it queues it
// for the interpreter of the current thread state, which (the current
// thread state being the process-wide GIL holder's) may be another
// thread's sub-interpreter: the caller must hold the GIL with a
// main-interpreter thread state for the call to reach the main interpreter.
inline constexpr bool kPendingCallsNeedMainThreadState =
    PY_VERSION_HEX < 0x030C0000;

}  // namespace pyscope::detail::compat

#endif  // PYSCOPE_DETAIL_COMPAT_H_
