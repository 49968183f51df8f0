// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// pyscope::Error, pyscope::PythonError and the Exec/TryExec/Eval helpers.

#include <cstdio>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "doctest/doctest.h"
#include "pyscope/pyscope.h"
#include "support/python_helpers.h"
#include "support/scenario.h"

namespace {

using pyscope::GILGuard;
using pyscope::PythonError;
using pyscope::ScopedRuntime;
using pyscope_test::ChildResult;
using pyscope_test::EvalLong;
using pyscope_test::RunScenario;
using pyscope_test::TestOptions;

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST_SUITE("errors") {
  TEST_CASE("Error carries its status") {
    const pyscope::Error error(absl::NotFoundError("no such thing"));
    CHECK(error.status() == absl::NotFoundError("no such thing"));
    CHECK(std::string(error.what()) == "NOT_FOUND: no such thing");
  }

  TEST_CASE("PythonError has the type, the message and the traceback") {
    ScopedRuntime runtime(TestOptions());
    GILGuard gil;
    try {
      pyscope::Exec(
          "def inner():\n"
          "    raise ValueError('bad value 17')\n"
          "def outer():\n"
          "    inner()\n"
          "outer()\n");
      FAIL("Exec did not throw");
    } catch (const PythonError& error) {
      CHECK(error.type_name() == "ValueError");
      CHECK(error.message() == "bad value 17");
      CHECK(Contains(error.traceback(), "Traceback (most recent call last)"));
      CHECK(Contains(error.traceback(), "in outer"));
      CHECK(Contains(error.traceback(), "in inner"));
      CHECK(Contains(error.traceback(), "ValueError: bad value 17"));
      CHECK(error.status().code() == absl::StatusCode::kUnknown);
      CHECK(error.status().message() == "ValueError: bad value 17");
      CHECK(Contains(error.what(), "ValueError: bad value 17"));
    }
    // Capturing cleared the error indicator.
    CHECK(PyErr_Occurred() == nullptr);
    CHECK(EvalLong("1 + 1") == 2);
  }

  TEST_CASE("user-defined exception types are named with their module") {
    ScopedRuntime runtime(TestOptions());
    GILGuard gil;
    try {
      pyscope::Exec(
          "class Boom(Exception):\n"
          "    pass\n"
          "raise Boom('kaboom')\n");
      FAIL("Exec did not throw");
    } catch (const PythonError& error) {
      CHECK(error.type_name() == "__main__.Boom");
      CHECK(error.message() == "kaboom");
    }
    try {
      pyscope::Exec("import json\njson.loads('{')");
      FAIL("Exec did not throw");
    } catch (const PythonError& error) {
      CHECK(error.type_name() == "json.decoder.JSONDecodeError");
    }
  }

  TEST_CASE("Exec runs in __main__; Eval returns a new reference") {
    ScopedRuntime runtime(TestOptions());
    GILGuard gil;
    pyscope::Exec("answer = 6 * 7");
    PyObject* value = pyscope::Eval("answer");
    REQUIRE(value != nullptr);
    CHECK(PyLong_AsLong(value) == 42);
    Py_DECREF(value);
    PyObject* main_dict = PyModule_GetDict(PyImport_AddModule("__main__"));
    CHECK(PyDict_GetItemString(main_dict, "answer") != nullptr);
  }

  TEST_CASE("Eval raises PythonError for bad expressions") {
    ScopedRuntime runtime(TestOptions());
    GILGuard gil;
    try {
      pyscope::Eval("undefined_name_17");
      FAIL("Eval did not throw");
    } catch (const PythonError& error) {
      CHECK(error.type_name() == "NameError");
      CHECK(Contains(error.message(), "undefined_name_17"));
    }
    try {
      pyscope::Eval("x = 1");  // a statement, not an expression
      FAIL("Eval did not throw");
    } catch (const PythonError& error) {
      CHECK(error.type_name() == "SyntaxError");
    }
    CHECK(PyErr_Occurred() == nullptr);
  }

  TEST_CASE("TryExec returns the error as a status") {
    ScopedRuntime runtime(TestOptions());
    GILGuard gil;
    CHECK(pyscope::TryExec("ok = True").ok());
    const absl::Status status = pyscope::TryExec("def f():\n    1 / 0\nf()\n");
    CHECK(status.code() == absl::StatusCode::kUnknown);
    const std::string message(status.message());
    CHECK(message.rfind("ZeroDivisionError: division by zero\n", 0) == 0);
    CHECK(Contains(message, "Traceback (most recent call last)"));
    CHECK(Contains(message, "in f"));
    CHECK(PyErr_Occurred() == nullptr);
  }

  TEST_CASE("ThrowIfPythonError and FetchAndClear") {
    ScopedRuntime runtime(TestOptions());
    GILGuard gil;
    pyscope::ThrowIfPythonError();  // nothing raised: no throw
    PyErr_SetString(PyExc_KeyError, "missing key");
    try {
      pyscope::ThrowIfPythonError();
      FAIL("ThrowIfPythonError did not throw");
    } catch (const PythonError& error) {
      CHECK(error.type_name() == "KeyError");
      CHECK(error.message() == "'missing key'");
    }
    CHECK(PyErr_Occurred() == nullptr);
    const PythonError none = PythonError::FetchAndClear();
    CHECK(none.type_name() == "SystemError");
  }
}

PYSCOPE_SCENARIO(SystemExitDoesNotExit) {
  ScopedRuntime runtime(TestOptions());
  GILGuard gil;
  try {
    pyscope::Exec("raise SystemExit(3)");
    std::printf("exec1=returned\n");
  } catch (const PythonError& error) {
    std::printf("exec1=%s:%s\n", error.type_name().c_str(),
                error.message().c_str());
  }
  try {
    pyscope::Exec("import sys\ndef leave():\n    sys.exit('bye')\nleave()");
    std::printf("exec2=returned\n");
  } catch (const PythonError& error) {
    std::printf("exec2=%s:%s\n", error.type_name().c_str(),
                error.message().c_str());
  }
  const absl::Status status = pyscope::TryExec("raise SystemExit(4)");
  std::printf("tryexec=%s\n", absl::StatusCodeToString(status.code()).c_str());
  std::printf("still_running=%ld\n", EvalLong("40 + 2"));
  return 0;
}

TEST_SUITE("errors") {
  TEST_CASE("SystemExit is a PythonError; the process does not exit") {
    ChildResult child = RunScenario("SystemExitDoesNotExit");
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    CHECK(child.out ==
          "exec1=SystemExit:3\n"
          "exec2=SystemExit:bye\n"
          "tryexec=UNKNOWN\n"
          "still_running=42\n");
  }
}

// Exec, TryExec and Eval on a thread that does not hold the GIL: a status
// or pyscope::Error, never a call into CPython.
PYSCOPE_SCENARIO(ExecWithoutGil) {
  pyscope::ScopedRuntime runtime(pyscope_test::TestOptions());
  auto report = [](const char* where) {
    try {
      pyscope::Exec("x = 1");
      pyscope_test::PrintFact(where, "exec ran");
    } catch (const pyscope::PythonError&) {
      pyscope_test::PrintFact(where, "python error");
    } catch (const pyscope::Error& error) {
      pyscope_test::PrintFact(where,
                              absl::StatusCodeToString(error.status().code()));
    }
    const absl::Status tried = pyscope::TryExec("x = 1");
    pyscope_test::PrintFact(absl::StrCat(where, "_try").c_str(),
                            absl::StatusCodeToString(tried.code()));
    try {
      PyObject* value = pyscope::Eval("1");
      Py_XDECREF(value);
      pyscope_test::PrintFact(absl::StrCat(where, "_eval").c_str(), "ran");
    } catch (const pyscope::Error& error) {
      pyscope_test::PrintFact(absl::StrCat(where, "_eval").c_str(),
                              absl::StatusCodeToString(error.status().code()));
    }
  };
  std::thread([&] { report("no_guard"); }).join();
  {
    pyscope::GILGuard gil;
    {
      pyscope::AllowThreads nogil;
      report("allow_threads");
    }
    PyThreadState* saved = PyEval_SaveThread();
    report("raw_release");
    PyEval_RestoreThread(saved);
    report("guard");
  }
  return 0;
}

TEST_SUITE("errors") {
  TEST_CASE("Exec, TryExec and Eval without the GIL are errors, not crashes") {
    const pyscope_test::ChildResult child =
        pyscope_test::RunScenario("ExecWithoutGil");
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    for (const char* where : {"no_guard", "allow_threads", "raw_release"}) {
      CAPTURE(where);
      CHECK(pyscope_test::HasFact(child,
                                  absl::StrCat(where, "=FAILED_PRECONDITION")));
      CHECK(pyscope_test::HasFact(
          child, absl::StrCat(where, "_try=FAILED_PRECONDITION")));
      CHECK(pyscope_test::HasFact(
          child, absl::StrCat(where, "_eval=FAILED_PRECONDITION")));
    }
    CHECK(pyscope_test::HasFact(child, "guard=exec ran"));
    CHECK(pyscope_test::HasFact(child, "guard_try=OK"));
    CHECK(pyscope_test::HasFact(child, "guard_eval=ran"));
  }
}

}  // namespace
