// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0

#include "pyscope/error.h"

#include <exception>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "caught_exception.h"

namespace pyscope {
namespace {

// str(object) as UTF-8, or a placeholder if that raises (the error is
// cleared: formatting an exception must not replace it).
std::string ToUtf8(PyObject* object) PYSCOPE_REQUIRES_GIL {
  if (object == nullptr) return "";
  PyObject* text = PyObject_Str(object);
  if (text == nullptr) {
    PyErr_Clear();
    return "<unprintable>";
  }
  Py_ssize_t size = 0;
  const char* data = PyUnicode_AsUTF8AndSize(text, &size);
  std::string result =
      data != nullptr ? std::string(data, size) : "<unprintable>";
  if (data == nullptr) PyErr_Clear();
  Py_DECREF(text);
  return result;
}

std::string TypeName(PyObject* exception) PYSCOPE_REQUIRES_GIL {
  PyTypeObject* type = Py_TYPE(exception);
  PyObject* module =
      PyObject_GetAttrString(reinterpret_cast<PyObject*>(type), "__module__");
  std::string name = type->tp_name;
  if (module == nullptr) {
    PyErr_Clear();
    return name;
  }
  std::string module_name = ToUtf8(module);
  Py_DECREF(module);
  // Built-in exceptions ("builtins") and C types (whose tp_name is already
  // dotted) are shown as CPython's traceback shows them.
  if (module_name.empty() || module_name == "builtins" ||
      name.find('.') != std::string::npos) {
    return name;
  }
  PyObject* qualname =
      PyObject_GetAttrString(reinterpret_cast<PyObject*>(type), "__qualname__");
  if (qualname != nullptr) {
    name = ToUtf8(qualname);
    Py_DECREF(qualname);
  } else {
    PyErr_Clear();
  }
  return absl::StrCat(module_name, ".", name);
}

std::string FormatTraceback(PyObject* exception) PYSCOPE_REQUIRES_GIL {
  PyObject* module = PyImport_ImportModule("traceback");
  if (module == nullptr) {
    PyErr_Clear();
    return "";
  }
  PyObject* traceback = PyException_GetTraceback(exception);
  PyObject* lines = PyObject_CallMethod(
      module, "format_exception", "OOO",
      reinterpret_cast<PyObject*>(Py_TYPE(exception)), exception,
      traceback != nullptr ? traceback : Py_None);
  Py_XDECREF(traceback);
  Py_DECREF(module);
  if (lines == nullptr) {
    PyErr_Clear();
    return "";
  }
  std::string result;
  PyObject* iterator = PyObject_GetIter(lines);
  if (iterator != nullptr) {
    while (PyObject* line = PyIter_Next(iterator)) {
      result += ToUtf8(line);
      Py_DECREF(line);
    }
    Py_DECREF(iterator);
  }
  PyErr_Clear();
  Py_DECREF(lines);
  return result;
}
}  // namespace

Error::Error(absl::Status status)
    : std::runtime_error(status.ToString()), status_(std::move(status)) {}

PythonError::PythonError(std::string type_name, std::string message,
                         std::string traceback)
    : Error(absl::UnknownError(absl::StrCat(type_name, ": ", message))),
      type_name_(std::move(type_name)),
      message_(std::move(message)),
      traceback_(std::move(traceback)) {}

PythonError PythonError::FetchAndClear() {
  PyObject* exception = detail::compat::FetchRaisedException();
  if (exception == nullptr) {
    return PythonError("SystemError",
                       "a Python C API call failed without setting an "
                       "exception",
                       "");
  }
  std::string type_name = TypeName(exception);
  std::string message = ToUtf8(exception);
  std::string traceback = FormatTraceback(exception);
  Py_DECREF(exception);
  PyErr_Clear();
  return PythonError(std::move(type_name), std::move(message),
                     std::move(traceback));
}

void ThrowIfPythonError() {
  if (PyErr_Occurred() != nullptr) throw PythonError::FetchAndClear();
}

namespace detail {

void RaiseCaughtException(absl::string_view callable) {
  const std::string name(callable);
  try {
    throw;
  } catch (const PythonError& e) {
    PyErr_Format(PyExc_RuntimeError, "%s: %s\n%s", e.type_name().c_str(),
                 e.message().c_str(), e.traceback().c_str());
  } catch (const std::exception& e) {
    if (PyErr_Occurred() == nullptr) {
      PyErr_Format(PyExc_RuntimeError, "C++ exception in %s: %s", name.c_str(),
                   e.what());
    }
  } catch (...) {
    if (PyErr_Occurred() == nullptr) {
      PyErr_Format(PyExc_RuntimeError, "C++ exception of unknown type in %s",
                   name.c_str());
    }
  }
}

}  // namespace detail
}  // namespace pyscope
