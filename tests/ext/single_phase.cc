// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// pyscope_single_phase: the smallest extension module with single-phase
// initialization (PyModule_Create in PyInit_*, no Py_mod_multiple_interpreters
// slot). From CPython 3.12 an interpreter created with
// check_multi_interp_extensions refuses to import it (ImportError naming the
// module); a legacy interpreter imports it on every version.
// sub_interpreter_test.cc puts this directory's build output on sys.path.

#define PY_SSIZE_T_CLEAN
#include <Python.h>

namespace {

PyModuleDef single_phase_module = {
    PyModuleDef_HEAD_INIT,
    "pyscope_single_phase",
    "A single-phase init module for pyscope's sub-interpreter tests.",
    -1,       // global state: the reason such a module is not interpreter-safe
    nullptr,  // m_methods
    nullptr,  // m_slots: none, so this is single-phase init
    nullptr,  // m_traverse
    nullptr,  // m_clear
    nullptr,  // m_free
};

}  // namespace

// The module's entry point, found by the import system by name.
PyMODINIT_FUNC PyInit_pyscope_single_phase(void);

PyMODINIT_FUNC PyInit_pyscope_single_phase(void) {
#ifdef PYSCOPE_ASSERT_GIL_HELD
  // Built with pyscope/checked_api.h force-included: CPython calls this with
  // the GIL held, which the analysis cannot see.
  PYSCOPE_ASSERT_GIL_HELD();
#endif
  PyObject* module = PyModule_Create(&single_phase_module);
  if (module == nullptr) return nullptr;
  if (PyModule_AddIntConstant(module, "answer", 42) != 0) {
    Py_DECREF(module);
    return nullptr;
  }
  return module;
}
