// Tests for pyscope/testing.h, using it as a test binary would.

#define DOCTEST_CONFIG_IMPLEMENT
#define PYSCOPE_TESTING_MAIN
#include <doctest/doctest.h>
// (pyscope/testing.h needs doctest first.)
#include "pyscope/testing.h"

namespace {

long MainVariable(const char* name) PYSCOPE_REQUIRES_GIL {
  PyObject* value = pyscope::Eval(name);
  const long result = PyLong_AsLong(value);
  Py_DECREF(value);
  return result;
}

TEST_CASE("the test binary has a running runtime") {
  CHECK(pyscope::GetRuntimeState() == pyscope::RuntimeState::kRunning);
}

TEST_CASE_FIXTURE(pyscope::testing::WithGil, "WithGil holds the main GIL") {
  PYSCOPE_ASSERT_GIL_HELD();
  CHECK(PyGILState_Check() == 1);
  pyscope::Exec("shared_marker = 7");
  CHECK(MainVariable("shared_marker") == 7);
}

TEST_CASE_FIXTURE(pyscope::testing::InFreshInterpreter,
                  "a fresh interpreter does not see another case's state") {
  PYSCOPE_ASSERT_GIL_HELD();
  CHECK(PyInterpreterState_GetID(
            PyThreadState_GetInterpreter(PyThreadState_Get())) != 0);
  PYSCOPE_CHECK_RAISES(pyscope::Exec("shared_marker"), "NameError");
  pyscope::Exec("import sys; sys.fresh_marker = 1");
}

TEST_CASE_FIXTURE(pyscope::testing::InFreshInterpreter,
                  "each case gets its own interpreter") {
  PYSCOPE_ASSERT_GIL_HELD();
  CHECK(MainVariable("int(hasattr(__import__('sys'), 'fresh_marker'))") == 0);
}

TEST_CASE_FIXTURE(pyscope::testing::WithGil, "CHECK helpers") {
  PYSCOPE_ASSERT_GIL_HELD();
  PYSCOPE_CHECK_RAISES(pyscope::Exec("raise KeyError('k')"), "KeyError");
  PYSCOPE_CHECK_RAISES(pyscope::Exec("import json; json.loads('[')"),
                       "json.decoder.JSONDecodeError");
  PYSCOPE_CHECK_NO_RAISE(pyscope::Exec("x = 1 + 1"));
  CHECK(PyErr_Occurred() == nullptr);
}

}  // namespace
