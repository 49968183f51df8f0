// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// The host-integration parts of RuntimeOptions (pyscope/runtime.h):
// built-in modules and audit hooks, which CPython accepts only before the
// runtime starts and forgets when it finalizes. pyscope applies them at
// every initialization, so a runtime started again gets them again.

#ifndef PYSCOPE_HOST_OPTIONS_H_
#define PYSCOPE_HOST_OPTIONS_H_

#include <functional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "pyscope/detail/compat.h"
#include "pyscope/detail/export.h"

namespace pyscope {

// A C/C++ extension module registered as a built-in (PyImport_AppendInittab)
// before initialization: `import name` works in every interpreter without
// a file on sys.path. Give either an init function or a module definition.
//
//   static PyModuleDef def = {PyModuleDef_HEAD_INIT, "host", ...};
//   options.builtin_modules.push_back(
//       pyscope::BuiltinModule::FromDefinition("host", &def));
//
// A definition with m_slots is multi-phase (PEP 489): each interpreter gets
// its own module object, and with a Py_mod_multiple_interpreters slot of
// Py_MOD_PER_INTERPRETER_GIL_SUPPORTED (3.12+) it can be imported in
// sub-interpreters with their own GIL. Without m_slots it is single-phase
// (PyModule_Create): one module shared by the interpreters that allow it.
// `init` and `definition` must stay valid for the process's lifetime
// (a static PyModuleDef).
struct PYSCOPE_API BuiltinModule {
  // `init` is a PyInit_ function: it returns a module (single-phase) or
  // PyModuleDef_Init(&def) (multi-phase).
  static BuiltinModule FromInit(std::string name, PyObject* (*init)());
  static BuiltinModule FromDefinition(std::string name,
                                      PyModuleDef* definition);

  // The import name: a Python identifier, optionally dotted.
  std::string name;
  PyObject* (*init)() = nullptr;
  PyModuleDef* definition = nullptr;
};

// An audit hook (PEP 578) installed with PySys_AddAuditHook before the
// runtime starts, so it sees every event from the first one on, in every
// interpreter. Called with the GIL held on the thread raising the event;
// `args` is the event's argument tuple (borrowed). A non-OK status aborts
// the audited operation with a Python RuntimeError carrying the message
// (PermissionError for kPermissionDenied); so does a C++ exception. Hooks
// cannot be removed while the runtime runs (CPython's rule); they are
// removed by finalization and installed again by the next initialization.
using AuditHook =
    std::function<absl::Status(std::string_view event, PyObject* args)>;

}  // namespace pyscope

#endif  // PYSCOPE_HOST_OPTIONS_H_
