// testing: a doctest suite for an embedded Python module, with
// pyscope/testing.h.
//
// Problem solved: testing C++ code that embeds Python needs one runtime per
// test binary, fresh interpreter state per test case, and failure messages
// that show the Python traceback rather than "an exception was raised".
// Here the module under test, `geometry`, is a built-in module of the host.
// Run it as a test binary; `--no-skip` also runs a case that fails on
// purpose, to show a Python traceback in the failure message.

#define DOCTEST_CONFIG_IMPLEMENT
#define PYSCOPE_TESTING_MAIN
#define PYSCOPE_TESTING_PRE_MAIN
#include <doctest/doctest.h>
// (pyscope/testing.h needs doctest first.)
#include "pyscope/testing.h"

namespace {

// geometry.area(width, height): ValueError for negative sides.
PyObject* Area(PyObject*, PyObject* args) PYSCOPE_REQUIRES_GIL {
  double width = 0, height = 0;
  if (!PyArg_ParseTuple(args, "dd", &width, &height)) return nullptr;
  if (width < 0 || height < 0) {
    return PyErr_Format(
        PyExc_ValueError, "negative side: %R",
        width < 0 ? PyTuple_GET_ITEM(args, 0) : PyTuple_GET_ITEM(args, 1));
  }
  return PyFloat_FromDouble(width * height);
}

PyMethodDef kMethods[] = {{"area", &Area, METH_VARARGS, "area(width, height)"},
                          {nullptr, nullptr, 0, nullptr}};
// Multi-phase initialization (PEP 489): the module can be imported in every
// interpreter, sub-interpreters included (the free-threaded build refuses
// single-phase modules there), and it declares that it needs no GIL.
PyModuleDef_Slot kSlots[] = {
#ifdef Py_mod_gil
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},  // Area shares no state (3.13+)
#endif
    {0, nullptr}};
PyModuleDef kModule = {PyModuleDef_HEAD_INIT,
                       "geometry",
                       nullptr,
                       0,
                       kMethods,
                       kSlots,
                       nullptr,
                       nullptr,
                       nullptr};

// Called by CPython, with the GIL held, at `import geometry`.
PyObject* InitGeometry() PYSCOPE_REQUIRES_GIL {
  return PyModuleDef_Init(&kModule);
}

double EvalDouble(const char* expression) PYSCOPE_REQUIRES_GIL {
  PyObject* value = pyscope::Eval(expression);
  const double result = PyFloat_AsDouble(value);
  Py_DECREF(value);
  return result;
}

}  // namespace

// Runs before the runtime starts: makes `geometry` a built-in module.
bool PyscopeTestingPreMain(int, char**, int*) {
  PyImport_AppendInittab("geometry", &InitGeometry);
  return false;  // go on: start the runtime, run the tests
}

TEST_CASE_FIXTURE(pyscope::testing::WithGil, "area multiplies the sides") {
  PYSCOPE_ASSERT_GIL_HELD();
  pyscope::Exec("import geometry");
  CHECK(EvalDouble("geometry.area(2, 3.5)") == 7.0);
}

TEST_CASE_FIXTURE(pyscope::testing::WithGil, "negative sides are refused") {
  PYSCOPE_ASSERT_GIL_HELD();
  pyscope::Exec("import geometry");
  PYSCOPE_CHECK_RAISES(pyscope::Exec("geometry.area(-1, 2)"), "ValueError");
  PYSCOPE_CHECK_RAISES(pyscope::Exec("geometry.area('a', 2)"), "TypeError");
}

TEST_CASE_FIXTURE(pyscope::testing::InFreshInterpreter,
                  "works in a fresh sub-interpreter, without shared state") {
  PYSCOPE_ASSERT_GIL_HELD();
  PYSCOPE_CHECK_RAISES(pyscope::Exec("geometry"), "NameError");  // no import
  PYSCOPE_CHECK_NO_RAISE(
      pyscope::Exec("import geometry\n"
                    "a = geometry.area(1, 1)"));
  CHECK(EvalDouble("a") == 1.0);
}

// Fails on purpose (skipped unless --no-skip): the failure message carries
// the Python traceback, down to the line in the Python helper.
TEST_CASE_FIXTURE(pyscope::testing::WithGil,
                  "a failure shows the Python traceback" * doctest::skip()) {
  PYSCOPE_ASSERT_GIL_HELD();
  PYSCOPE_CHECK_NO_RAISE(
      pyscope::Exec("import geometry\n"
                    "def total(sides):\n"
                    "    return geometry.area(*sides)\n"
                    "total((3, -4))\n"));
}
