// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// The two exception types pyscope throws, and the helpers that turn a
// raised Python exception into one of them.
//
// The core reports with absl::Status; exceptions appear only at the public
// throwing constructors and helpers. The throwing constructors have
// non-throwing siblings (Create, std::nothrow) that return the same
// absl::Status; Exec (pyscope/exec.h) has TryExec.

#ifndef PYSCOPE_ERROR_H_
#define PYSCOPE_ERROR_H_

#include <stdexcept>
#include <string>

#include "absl/status/status.h"
#include "pyscope/annotations.h"
#include "pyscope/detail/compat.h"
#include "pyscope/detail/export.h"

namespace pyscope {

// Thrown by pyscope's throwing constructors and helpers. Carries the
// absl::Status that the non-throwing form would have returned; `what()` is
// the status rendered as text (status.ToString(), e.g. "UNAVAILABLE:
// pyscope: cannot attach to Python: the runtime is being finalized; ...").
class PYSCOPE_API Error : public std::runtime_error {
 public:
  // `status` must not be OK.
  explicit Error(absl::Status status);

  const absl::Status& status() const noexcept { return status_; }

 private:
  absl::Status status_;
};

// A Python exception captured as C++ values: the exception's type name
// (`"ValueError"`, `"mypkg.errors.Boom"`), its `str()` and the formatted
// traceback (as `traceback.format_exception` prints it). The status code is
// `absl::StatusCode::kUnknown` with message "TypeName: message". Capturing
// clears the Python error indicator, so the interpreter stays usable.
class PYSCOPE_API PythonError : public Error {
 public:
  // Builds one from values, e.g. in tests.
  PythonError(std::string type_name, std::string message,
              std::string traceback);

  // Captures and clears the exception currently raised in the attached
  // thread state (PyErr_GetRaisedException on 3.12+, a normalized
  // PyErr_Fetch before). If none is raised, returns a PythonError of type
  // "SystemError" saying so (a C API call reported failure without setting
  // an exception). Requires the GIL.
  static PythonError FetchAndClear() PYSCOPE_REQUIRES_GIL;

  // Built-in exceptions by bare name ("KeyError"); others as
  // module.QualifiedName ("mypkg.errors.Boom"); C types whose tp_name is
  // dotted, as that name.
  const std::string& type_name() const noexcept { return type_name_; }
  // str(exception) (e.g. "'k'" for KeyError('k')), or "<unprintable>" if
  // that raises.
  const std::string& message() const noexcept { return message_; }
  // The text of traceback.format_exception(...), including the final
  // "Type: message" line; empty if formatting failed.
  const std::string& traceback() const noexcept { return traceback_; }

 private:
  std::string type_name_;
  std::string message_;
  std::string traceback_;
};

// Throws PythonError::FetchAndClear() if a Python exception is raised
// (PyErr_Occurred()); otherwise does nothing. Requires the GIL.
PYSCOPE_API void ThrowIfPythonError() PYSCOPE_REQUIRES_GIL;

}  // namespace pyscope

#endif  // PYSCOPE_ERROR_H_
