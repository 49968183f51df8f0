// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Every difference between the supported CPython versions (3.9-3.13) that
// pyscope depends on, as small named functions. Logic code calls these and
// never tests PY_VERSION_HEX itself.

#ifndef PYSCOPE_DETAIL_COMPAT_H_
#define PYSCOPE_DETAIL_COMPAT_H_

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "pyscope/annotations.h"

#if PY_VERSION_HEX < 0x03090000
#error "pyscope supports CPython 3.9 and newer"
#endif

namespace pyscope::detail::compat {

// The Python version the headers describe, as (major, minor).
inline constexpr int kPythonMinor = PY_MINOR_VERSION;

// The thread state attached to the calling thread, or null; never a fatal
// error. Before 3.12 CPython keeps a single process-wide "current" pointer
// (the GIL holder's thread state, `_PyRuntime.gilstate.tstate_current`);
// from 3.12 it is a thread-local. Comparing the result with a thread state
// this thread owns is correct on both: only the GIL holder can store its own
// pointer there. Never dereference the result unless it is known to be ours.
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
