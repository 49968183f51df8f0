// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Output capture (pyscope/output.h): a writer type per interpreter that
// replaces sys.stdout / sys.stderr while captures are active, and sends each
// write() to the writing thread's innermost capture, the interpreter's newest
// capture, or the stream it replaced.

#include "pyscope/output.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "attach.h"
#include "pyscope/error.h"
#include "pyscope/gil.h"
#include "pyscope/interpreter_local.h"
#include "thread_state_cache.h"

namespace pyscope {
namespace detail {

// A capture's receiver: the user's sink, or collected text. Detach() makes
// it refuse further text; it waits for a delivery in progress.
class CaptureSink {
 public:
  explicit CaptureSink(OutputSink sink) : sink_(std::move(sink)) {}

  // Delivers `text`; false once detached (the writer then looks further).
  // An exception from the sink is returned in *error.
  bool Deliver(OutputStream stream, std::string_view text, std::string* error) {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    if (!active_) return false;
    if (!sink_) {
      text_[static_cast<int>(stream)].append(text);
      return true;
    }
    try {
      sink_(stream, text);
    } catch (const std::exception& e) {
      *error = e.what();
    } catch (...) {
      *error = "a non-standard exception";
    }
    return true;
  }

  void Detach() {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    active_ = false;
  }

  std::string text(OutputStream stream) const {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    return text_[static_cast<int>(stream)];
  }

 private:
  // Recursive: a sink may stop its own capture (it is then detached, and
  // the Python side is put back by whoever ends the capture object).
  mutable std::recursive_mutex mu_;
  OutputSink sink_;
  bool active_ = true;
  std::string text_[2];
};

namespace {

constexpr const char* kStreamNames[2] = {"stdout", "stderr"};

// What one interpreter keeps for capture: its writer type and objects, the
// streams they replaced, and its interpreter-wide captures. Touched only
// with that interpreter's GIL held. Owned by an InterpreterLocal (so it is
// dropped when the interpreter is cleared); writers refer to it weakly.
struct OutputState {
  PyInterpreterState* interp = nullptr;
  OwnedRef type;
  OwnedRef writers[2];
  OwnedRef previous[2];
  std::vector<std::shared_ptr<CaptureSink>> sinks;  // newest last
  int users = 0;  // active captures (interpreter-wide and per thread)
};

// A ThreadOutputCapture scope, in its thread's list (innermost first).
struct ThreadEntry {
  PyInterpreterState* interp;
  CaptureSink* sink;
  ThreadEntry* outer;
};
thread_local ThreadEntry* innermost = nullptr;

struct WriterObject {
  PyObject_HEAD int stream;
  std::weak_ptr<OutputState>* state;  // null for one made from Python
};

std::shared_ptr<OutputState> StateOf(PyObject* self) {
  auto* writer = reinterpret_cast<WriterObject*>(self);
  return writer->state == nullptr ? nullptr : writer->state->lock();
}

// Sends `text` to a capture that takes it; false if none is active.
// Returns -1 (exception set) when the sink threw.
int DeliverToCapture(const std::shared_ptr<OutputState>& state,
                     OutputStream stream, PyObject* text) PYSCOPE_REQUIRES_GIL {
  std::vector<CaptureSink*> candidates;
  for (ThreadEntry* entry = innermost; entry != nullptr; entry = entry->outer) {
    if (entry->interp == state->interp) candidates.push_back(entry->sink);
  }
  // Copies: a sink may end a capture, which edits the list.
  std::vector<std::shared_ptr<CaptureSink>> sinks(state->sinks.rbegin(),
                                                  state->sinks.rend());
  for (const auto& sink : sinks) candidates.push_back(sink.get());
  if (candidates.empty()) return 0;
  PyObject* bytes =
      PyUnicode_AsEncodedString(text, "utf-8", "backslashreplace");
  if (bytes == nullptr) return -1;
  const std::string_view utf8(PyBytes_AS_STRING(bytes),
                              static_cast<size_t>(PyBytes_GET_SIZE(bytes)));
  int delivered = 0;
  std::string error;
  for (CaptureSink* sink : candidates) {
    if (sink->Deliver(stream, utf8, &error)) {
      delivered = 1;
      break;
    }
  }
  Py_DECREF(bytes);
  if (!error.empty()) {
    PyErr_Format(PyExc_RuntimeError, "pyscope output sink threw: %s",
                 error.c_str());
    return -1;
  }
  return delivered;
}

// The stream a writer forwards to, or null (a new reference).
PyObject* PreviousStream(const std::shared_ptr<OutputState>& state, int stream,
                         PyObject* self) PYSCOPE_REQUIRES_GIL {
  if (state == nullptr) return nullptr;
  PyObject* previous = state->previous[stream].get();
  if (previous == nullptr || previous == Py_None || previous == self) {
    return nullptr;
  }
  Py_INCREF(previous);
  return previous;
}

PyObject* WriterWrite(PyObject* self, PyObject* text) PYSCOPE_REQUIRES_GIL {
  if (!PyUnicode_Check(text)) {
    PyErr_Format(PyExc_TypeError, "write() argument must be str, not %.100s",
                 Py_TYPE(text)->tp_name);
    return nullptr;
  }
  const Py_ssize_t length = PyUnicode_GetLength(text);
  const int stream = reinterpret_cast<WriterObject*>(self)->stream;
  std::shared_ptr<OutputState> state = StateOf(self);
  if (state != nullptr) {
    const int delivered =
        DeliverToCapture(state, static_cast<OutputStream>(stream), text);
    if (delivered < 0) return nullptr;
    if (delivered > 0) return PyLong_FromSsize_t(length);
  }
  if (PyObject* previous = PreviousStream(state, stream, self)) {
    PyObject* result = PyObject_CallMethod(previous, "write", "O", text);
    Py_DECREF(previous);
    if (result == nullptr) return nullptr;
    Py_DECREF(result);
    return PyLong_FromSsize_t(length);
  }
  if (state == nullptr) {
    // The interpreter is being cleared: its C stdio is all that is left.
    Py_ssize_t size = 0;
    const char* utf8 = PyUnicode_AsUTF8AndSize(text, &size);
    if (utf8 == nullptr) return nullptr;
    std::fwrite(utf8, 1, static_cast<size_t>(size),
                stream == 0 ? stdout : stderr);
  }
  return PyLong_FromSsize_t(length);
}

PyObject* ForwardCall(PyObject* self, const char* method) PYSCOPE_REQUIRES_GIL {
  const int stream = reinterpret_cast<WriterObject*>(self)->stream;
  if (PyObject* previous = PreviousStream(StateOf(self), stream, self)) {
    PyObject* result = PyObject_CallMethod(previous, method, nullptr);
    Py_DECREF(previous);
    return result;
  }
  return nullptr;
}

PyObject* WriterFlush(PyObject* self, PyObject*) PYSCOPE_REQUIRES_GIL {
  PyObject* result = ForwardCall(self, "flush");
  if (result != nullptr || PyErr_Occurred() != nullptr) return result;
  Py_RETURN_NONE;
}

PyObject* WriterFileno(PyObject* self, PyObject*) PYSCOPE_REQUIRES_GIL {
  PyObject* result = ForwardCall(self, "fileno");
  if (result != nullptr || PyErr_Occurred() != nullptr) return result;
  PyErr_SetString(PyExc_OSError,
                  "pyscope: this captured stream has no file descriptor");
  return nullptr;
}

PyObject* ReturnFalse(PyObject*, PyObject*) PYSCOPE_REQUIRES_GIL {
  Py_RETURN_FALSE;
}
PyObject* ReturnTrue(PyObject*, PyObject*) PYSCOPE_REQUIRES_GIL {
  Py_RETURN_TRUE;
}

PyObject* GetEncoding(PyObject*, void*) PYSCOPE_REQUIRES_GIL {
  return PyUnicode_FromString("utf-8");
}
PyObject* GetErrors(PyObject*, void*) PYSCOPE_REQUIRES_GIL {
  return PyUnicode_FromString("backslashreplace");
}
PyObject* GetClosed(PyObject*, void*) PYSCOPE_REQUIRES_GIL { Py_RETURN_FALSE; }
PyObject* GetName(PyObject* self, void*) PYSCOPE_REQUIRES_GIL {
  const int stream = reinterpret_cast<WriterObject*>(self)->stream;
  return PyUnicode_FromFormat("<%s>", kStreamNames[stream]);
}

void WriterDealloc(PyObject* self) PYSCOPE_REQUIRES_GIL {
  PyTypeObject* type = Py_TYPE(self);
  delete reinterpret_cast<WriterObject*>(self)->state;
  type->tp_free(self);
  Py_DECREF(type);
}

PyMethodDef kWriterMethods[] = {
    {"write", &WriterWrite, METH_O, "Write text to the captured stream."},
    {"flush", &WriterFlush, METH_NOARGS, "Flush the stream written to."},
    {"fileno", &WriterFileno, METH_NOARGS,
     "The descriptor of the stream this one replaced."},
    {"isatty", &ReturnFalse, METH_NOARGS, "False: captured output."},
    {"readable", &ReturnFalse, METH_NOARGS, "False."},
    {"seekable", &ReturnFalse, METH_NOARGS, "False."},
    {"writable", &ReturnTrue, METH_NOARGS, "True."},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef kWriterGetSet[] = {
    {"encoding", &GetEncoding, nullptr, nullptr, nullptr},
    {"errors", &GetErrors, nullptr, nullptr, nullptr},
    {"closed", &GetClosed, nullptr, nullptr, nullptr},
    {"name", &GetName, nullptr, nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyType_Slot kWriterSlots[] = {
    {Py_tp_dealloc, reinterpret_cast<void*>(&WriterDealloc)},
    {Py_tp_methods, kWriterMethods},
    {Py_tp_getset, kWriterGetSet},
    {Py_tp_doc, const_cast<char*>("pyscope's capture of sys.stdout / stderr")},
    {0, nullptr},
};

PyType_Spec kWriterSpec = {
    "pyscope.CapturedStream", sizeof(WriterObject), 0,
    Py_TPFLAGS_DEFAULT,       kWriterSlots,
};

InterpreterLocal<std::shared_ptr<OutputState>>& States() {
  // Never destroyed: values are dropped with their interpreters.
  static auto* const states =
      new InterpreterLocal<std::shared_ptr<OutputState>>;
  return *states;
}

std::shared_ptr<OutputState> MakeState() PYSCOPE_REQUIRES_GIL {
  auto state = std::make_shared<OutputState>();
  state->interp = PyThreadState_GetInterpreter(PyThreadState_Get());
  state->type = OwnedRef(PyType_FromSpec(&kWriterSpec));
  if (!state->type) throw PythonError::FetchAndClear();
  auto* type = reinterpret_cast<PyTypeObject*>(state->type.get());
  for (int stream = 0; stream < 2; ++stream) {
    PyObject* object = type->tp_alloc(type, 0);
    if (object == nullptr) throw PythonError::FetchAndClear();
    auto* writer = reinterpret_cast<WriterObject*>(object);
    writer->stream = stream;
    writer->state = new std::weak_ptr<OutputState>(state);
    state->writers[stream] = OwnedRef(object);
  }
  return state;
}

// The calling thread's interpreter's state, created on first use.
absl::StatusOr<std::shared_ptr<OutputState>> StateHere() PYSCOPE_REQUIRES_GIL {
  if (AttachedHere(ThisRecord()) == nullptr) {
    return absl::FailedPreconditionError(
        "pyscope: ThreadOutputCapture needs the GIL (create it inside a "
        "GILGuard scope)");
  }
  try {
    return States().GetOrCreate(&MakeState);
  } catch (const Error& e) {
    return absl::InternalError(
        absl::StrCat("pyscope: cannot create the output capture writers: ",
                     e.status().message()));
  }
}

// The first capture of an interpreter replaces sys.stdout / sys.stderr.
absl::Status Install(OutputState& state) PYSCOPE_REQUIRES_GIL {
  if (state.users++ > 0) return absl::OkStatus();
  for (int stream = 0; stream < 2; ++stream) {
    PyObject* current = PySys_GetObject(kStreamNames[stream]);  // borrowed
    if (current != state.writers[stream].get()) {
      PyObject* previous = current != nullptr ? current : Py_None;
      Py_INCREF(previous);
      state.previous[stream] = OwnedRef(previous);
    }
    if (PySys_SetObject(kStreamNames[stream], state.writers[stream].get()) !=
        0) {
      --state.users;
      return absl::InternalError(
          absl::StrCat("pyscope: cannot replace sys.", kStreamNames[stream],
                       ": ", PythonError::FetchAndClear().message()));
    }
  }
  return absl::OkStatus();
}

// The last capture puts the previous streams back, unless Python code
// replaced ours meanwhile.
void Uninstall(OutputState& state) PYSCOPE_REQUIRES_GIL {
  if (--state.users > 0) return;
  for (int stream = 0; stream < 2; ++stream) {
    if (PySys_GetObject(kStreamNames[stream]) != state.writers[stream].get()) {
      continue;
    }
    if (PySys_SetObject(kStreamNames[stream], state.previous[stream].get()) !=
        0) {
      PyErr_Clear();
    }
  }
}

}  // namespace
}  // namespace detail

// --- OutputCapture ---

OutputCapture::OutputCapture(const InterpreterView& interpreter,
                             OutputSink sink) {
  absl::Status status = Start(interpreter, std::move(sink));
  if (!status.ok()) throw Error(std::move(status));
}

OutputCapture::OutputCapture(const InterpreterView& interpreter)
    : OutputCapture(interpreter, nullptr) {}

absl::StatusOr<std::unique_ptr<OutputCapture>> OutputCapture::Create(
    const InterpreterView& interpreter, OutputSink sink) {
  std::unique_ptr<OutputCapture> capture(new OutputCapture());
  absl::Status status = capture->Start(interpreter, std::move(sink));
  if (!status.ok()) return status;
  return capture;
}

absl::Status OutputCapture::Start(const InterpreterView& interpreter,
                                  OutputSink sink) {
  GILGuard gil(interpreter, std::nothrow);
  if (!gil.ok()) return gil.status();
  absl::StatusOr<std::shared_ptr<detail::OutputState>> state =
      detail::StateHere();
  if (!state.ok()) return state.status();
  if (absl::Status installed = detail::Install(**state); !installed.ok()) {
    return installed;
  }
  sink_ = std::make_shared<detail::CaptureSink>(std::move(sink));
  (*state)->sinks.push_back(sink_);
  interpreter_ = interpreter;
  started_ = true;
  return absl::OkStatus();
}

OutputCapture::~OutputCapture() {
  absl::Status status = Stop();
  (void)status;  // kUnavailable: the interpreter is going away with them
}

absl::Status OutputCapture::Stop() {
  if (!started_.exchange(false)) return absl::OkStatus();
  sink_->Detach();
  GILGuard gil(interpreter_, std::nothrow);
  if (!gil.ok()) {
    // Ended or finalized: its streams went with it.
    if (gil.status().code() == absl::StatusCode::kFailedPrecondition ||
        interpreter_.generation() != detail::Gate::Get().generation()) {
      return absl::OkStatus();
    }
    return gil.status();
  }
  std::shared_ptr<detail::OutputState>* state = detail::States().Get();
  if (state == nullptr) return absl::OkStatus();
  auto& sinks = (*state)->sinks;
  auto it = std::find(sinks.begin(), sinks.end(), sink_);
  if (it == sinks.end()) return absl::OkStatus();
  sinks.erase(it);
  detail::Uninstall(**state);
  return absl::OkStatus();
}

std::string OutputCapture::text(OutputStream stream) const {
  return sink_ == nullptr ? std::string() : sink_->text(stream);
}

// --- ThreadOutputCapture ---

ThreadOutputCapture::ThreadOutputCapture(OutputSink sink) {
  Start(std::move(sink));
  if (!status_.ok()) throw Error(status_);
}

ThreadOutputCapture::ThreadOutputCapture() : ThreadOutputCapture(nullptr) {}

ThreadOutputCapture::ThreadOutputCapture(OutputSink sink,
                                         const std::nothrow_t&) {
  Start(std::move(sink));
}

ThreadOutputCapture::ThreadOutputCapture(const std::nothrow_t&) {
  Start(nullptr);
}

// The constructors require the GIL (and StateHere checks it).
void ThreadOutputCapture::Start(OutputSink sink)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  absl::StatusOr<std::shared_ptr<detail::OutputState>> state =
      detail::StateHere();
  if (!state.ok()) {
    status_ = state.status();
    return;
  }
  status_ = detail::Install(**state);
  if (!status_.ok()) return;
  sink_ = std::make_shared<detail::CaptureSink>(std::move(sink));
  entry_ = detail::innermost =
      new detail::ThreadEntry{(*state)->interp, sink_.get(), detail::innermost};
}

// Touches Python only when the thread still holds its interpreter's GIL.
ThreadOutputCapture::~ThreadOutputCapture() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (entry_ == nullptr) return;
  auto* entry = static_cast<detail::ThreadEntry*>(entry_);
  for (detail::ThreadEntry** link = &detail::innermost; *link != nullptr;
       link = &(*link)->outer) {
    if (*link == entry) {
      *link = entry->outer;
      break;
    }
  }
  sink_->Detach();
  PyThreadState* tstate = detail::AttachedHere(detail::ThisRecord());
  if (tstate != nullptr &&
      PyThreadState_GetInterpreter(tstate) == entry->interp) {
    if (std::shared_ptr<detail::OutputState>* state = detail::States().Get()) {
      detail::Uninstall(**state);
    }
  }
  delete entry;
}

std::string ThreadOutputCapture::text(OutputStream stream) const {
  return sink_ == nullptr ? std::string() : sink_->text(stream);
}

}  // namespace pyscope
