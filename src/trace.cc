// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// ScopedTrace / ScopedProfile (pyscope/trace.h): a C trampoline installed
// with PyEval_SetTrace / PyEval_SetProfile whose argument is a capsule that
// owns the C++ callable, and the exact restoration of what was installed.

#include "pyscope/trace.h"

#include <cstdio>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "attach.h"
#include "caught_exception.h"
#include "misuse.h"
#include "thread_state_cache.h"

namespace pyscope {
namespace detail {

// Owned by the capsule that CPython holds as the trace object, so that it
// lives as long as any thread state refers to it; `armed` is cleared when
// the scope ends, after which the trampoline does nothing.
struct TraceTarget {
  TraceFunction function;
  bool armed = true;  // read and written with the GIL held
};

namespace {

constexpr char kCapsuleName[] = "pyscope.trace";

// A capsule destructor: CPython calls it with the GIL held.
void DestroyTarget(PyObject* capsule) PYSCOPE_REQUIRES_GIL {
  delete static_cast<TraceTarget*>(PyCapsule_GetPointer(capsule, kCapsuleName));
}

TraceEventKind KindOf(int what) {
  switch (what) {
    case PyTrace_CALL:
      return TraceEventKind::kCall;
    case PyTrace_EXCEPTION:
      return TraceEventKind::kException;
    case PyTrace_LINE:
      return TraceEventKind::kLine;
    case PyTrace_RETURN:
      return TraceEventKind::kReturn;
    case PyTrace_C_CALL:
      return TraceEventKind::kCCall;
    case PyTrace_C_EXCEPTION:
      return TraceEventKind::kCException;
    case PyTrace_C_RETURN:
      return TraceEventKind::kCReturn;
    default:
      return TraceEventKind::kOpcode;
  }
}

// The function CPython calls for every event. A C++ exception or a Python
// error left by the callable becomes a Python exception at the traced
// point (return -1 with the error set), as for any C trace function.
int Trampoline(PyObject* obj, PyFrameObject* frame, int what,
               PyObject* arg) PYSCOPE_REQUIRES_GIL {
  auto* target =
      static_cast<TraceTarget*>(PyCapsule_GetPointer(obj, kCapsuleName));
  if (target == nullptr) {
    PyErr_Clear();
    return 0;
  }
  if (!target->armed) return 0;
  const TraceEvent event(KindOf(what), frame, arg);
  try {
    target->function(event);
  } catch (...) {
    detail::RaiseCaughtException("a pyscope trace function");
    return -1;
  }
  return PyErr_Occurred() != nullptr ? -1 : 0;
}

Py_tracefunc& FuncOf(PyThreadState* tstate, TraceInstallation::Hook hook) {
  return hook == TraceInstallation::Hook::kTrace ? tstate->c_tracefunc
                                                 : tstate->c_profilefunc;
}

PyObject*& ObjOf(PyThreadState* tstate, TraceInstallation::Hook hook) {
  return hook == TraceInstallation::Hook::kTrace ? tstate->c_traceobj
                                                 : tstate->c_profileobj;
}

void SetOnCallingThread(TraceInstallation::Hook hook, Py_tracefunc func,
                        PyObject* obj) PYSCOPE_REQUIRES_GIL {
  if (hook == TraceInstallation::Hook::kTrace) {
    PyEval_SetTrace(func, obj);
  } else {
    PyEval_SetProfile(func, obj);
  }
}

const char* HookName(TraceInstallation::Hook hook) {
  return hook == TraceInstallation::Hook::kTrace ? "trace" : "profile";
}

// Reads a str attribute of the code object as UTF-8 (valid while the code
// object lives, which the frame guarantees).
std::string_view Utf8(PyObject* text) PYSCOPE_REQUIRES_GIL {
  if (text == nullptr || !PyUnicode_Check(text)) return {};
  Py_ssize_t size = 0;
  const char* data = PyUnicode_AsUTF8AndSize(text, &size);
  if (data == nullptr) {
    PyErr_Clear();
    return {};
  }
  return std::string_view(data, static_cast<size_t>(size));
}

}  // namespace

absl::Status TraceInstallation::Install(Hook hook, Threads threads,
                                        TraceFunction function,
                                        const SourceLocation& where)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {  // checks the GIL at run time
  hook_ = hook;
  threads_ = threads;
  where_ = where;
  if (threads == Threads::kAll && !compat::kHasTraceAllThreads) {
    return absl::UnimplementedError(
        absl::StrCat("pyscope: a ", HookName(hook),
                     " function for all threads needs CPython 3.12 or newer "
                     "(PyEval_Set",
                     hook == Hook::kTrace ? "Trace" : "Profile",
                     "AllThreads); this is ", PY_MAJOR_VERSION, ".",
                     PY_MINOR_VERSION, ". Install one per thread with Scoped",
                     hook == Hook::kTrace ? "Trace" : "Profile", " instead."));
  }
  PyThreadState* tstate = AttachedHere(ThisRecord());
  if (tstate == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "pyscope: Scoped", hook == Hook::kTrace ? "Trace" : "Profile",
        threads == Threads::kAll ? "AllThreads" : "",
        " created on a thread that does not hold the GIL (at ", Site(where),
        "): open a pyscope::GILGuard first"));
  }
  if (threads == Threads::kCalling) {
    saved_.push_back(Saved{tstate, FuncOf(tstate, hook), ObjOf(tstate, hook)});
  } else {
    for (PyThreadState* t = PyInterpreterState_ThreadHead(
             PyThreadState_GetInterpreter(tstate));
         t != nullptr; t = PyThreadState_Next(t)) {
      saved_.push_back(Saved{t, FuncOf(t, hook), ObjOf(t, hook)});
    }
    for (const Saved& saved : saved_) {
      if (saved.func != saved_.front().func ||
          saved.obj != saved_.front().obj) {
        saved_.clear();
        return absl::FailedPreconditionError(absl::StrCat(
            "pyscope: the thread states of this interpreter have different ",
            HookName(hook),
            " functions; CPython can restore only one function for all of "
            "them, so the all-threads scope would not give each thread back "
            "its own. Install one per thread with Scoped",
            hook == Hook::kTrace ? "Trace" : "Profile", "."));
      }
    }
  }
  for (Saved& saved : saved_) Py_XINCREF(saved.obj);
  auto* target = new TraceTarget{std::move(function)};
  PyObject* capsule = PyCapsule_New(target, kCapsuleName, &DestroyTarget);
  if (capsule == nullptr) {
    delete target;
    PyErr_Clear();
    Remove();
    return absl::ResourceExhaustedError(
        "pyscope: cannot allocate the trace function's capsule");
  }
  capsule_ = capsule;
  target_ = target;
  tstate_ = tstate;
  if (threads == Threads::kCalling) {
    SetOnCallingThread(hook, &Trampoline, capsule);
  } else {
    compat::SetTraceAllThreads(hook == Hook::kProfile, &Trampoline, capsule);
  }
  // From 3.12 an audit hook may refuse sys.settrace / sys.setprofile
  // (CPython reports that as an unraisable exception and installs nothing).
  if (FuncOf(tstate, hook) != &Trampoline || ObjOf(tstate, hook) != capsule) {
    Remove();
    return absl::PermissionDeniedError(absl::StrCat(
        "pyscope: CPython did not install the ", HookName(hook),
        " function (an audit hook refused sys.set", HookName(hook), ")"));
  }
  return absl::OkStatus();
}

void TraceInstallation::Remove() noexcept ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (capsule_ == nullptr && saved_.empty()) return;
  if (compat::CurrentThreadStateUnchecked() != tstate_ || tstate_ == nullptr) {
    // Nothing of CPython's may be touched without the GIL: disarm (the
    // target is only read under the GIL, which some thread of ours held
    // when it was armed) and leak the references rather than crash.
    if (target_ != nullptr) target_->armed = false;
    std::fprintf(stderr,
                 "pyscope: the Scoped%s created at %s ended without its "
                 "thread state attached (released by a call pyscope does not "
                 "see); the callable is disarmed and the previous %s "
                 "function was not restored.\n",
                 hook_ == Hook::kTrace ? "Trace" : "Profile",
                 Site(where_).c_str(), HookName(hook_));
    capsule_ = nullptr;
    target_ = nullptr;
    saved_.clear();
    return;
  }
  if (target_ != nullptr) {
    target_->armed = false;
    if (threads_ == Threads::kCalling) {
      // Restore only if the installation is still ours: code inside the
      // scope may have installed its own since (sys.settrace), which then
      // stays.
      if (ObjOf(tstate_, hook_) == capsule_) {
        SetOnCallingThread(hook_, saved_.front().func, saved_.front().obj);
      }
    } else {
      compat::SetTraceAllThreads(hook_ == Hook::kProfile, saved_.front().func,
                                 saved_.front().obj);
    }
    if (PyErr_Occurred() != nullptr) PyErr_Clear();
  }
  for (Saved& saved : saved_) Py_XDECREF(saved.obj);
  saved_.clear();
  Py_XDECREF(capsule_);
  capsule_ = nullptr;
  target_ = nullptr;
}

}  // namespace detail

const char* TraceEventName(TraceEventKind kind) {
  switch (kind) {
    case TraceEventKind::kCall:
      return "call";
    case TraceEventKind::kException:
      return "exception";
    case TraceEventKind::kLine:
      return "line";
    case TraceEventKind::kReturn:
      return "return";
    case TraceEventKind::kCCall:
      return "c_call";
    case TraceEventKind::kCException:
      return "c_exception";
    case TraceEventKind::kCReturn:
      return "c_return";
    case TraceEventKind::kOpcode:
      return "opcode";
  }
  return "unknown";
}

std::string_view TraceEvent::file() const ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (frame_ == nullptr) return {};
  PyCodeObject* code = PyFrame_GetCode(frame_);  // the frame keeps it alive
  const std::string_view file = detail::Utf8(code->co_filename);
  Py_DECREF(code);
  return file;
}

int TraceEvent::line() const ABSL_NO_THREAD_SAFETY_ANALYSIS {
  return frame_ == nullptr ? 0 : PyFrame_GetLineNumber(frame_);
}

std::string_view TraceEvent::function() const ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (frame_ == nullptr) return {};
  PyCodeObject* code = PyFrame_GetCode(frame_);
  const std::string_view name = detail::Utf8(code->co_name);
  Py_DECREF(code);
  return name;
}

std::string TraceEvent::c_function() const ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (arg_ == nullptr ||
      (kind_ != TraceEventKind::kCCall && kind_ != TraceEventKind::kCReturn &&
       kind_ != TraceEventKind::kCException)) {
    return "";
  }
  for (const char* attribute : {"__qualname__", "__name__"}) {
    PyObject* name = PyObject_GetAttrString(arg_, attribute);
    if (name == nullptr) {
      PyErr_Clear();
      continue;
    }
    std::string result(detail::Utf8(name));
    Py_DECREF(name);
    if (!result.empty()) return result;
  }
  PyObject* repr = PyObject_Repr(arg_);
  if (repr == nullptr) {
    PyErr_Clear();
    return "";
  }
  std::string result(detail::Utf8(repr));
  Py_DECREF(repr);
  return result;
}

}  // namespace pyscope
