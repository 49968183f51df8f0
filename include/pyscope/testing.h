// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// doctest integration for tests of code that embeds Python.
//
// One runtime per test binary: in exactly one translation unit write
//
//   #define DOCTEST_CONFIG_IMPLEMENT
//   #define PYSCOPE_TESTING_MAIN
//   #include <doctest/doctest.h>
//   #include "pyscope/testing.h"
//
// and the binary gets a main() that starts a ScopedRuntime (isolated, or
// the options returned by a `pyscope::RuntimeOptions
// PyscopeTestRuntimeOptions()` you define when PYSCOPE_TESTING_OPTIONS is
// defined), runs doctest, finalizes the runtime and fails the run if
// finalization reported an error.
//
// With PYSCOPE_TESTING_PRE_MAIN defined, main() first calls a
// `bool PyscopeTestingPreMain(int argc, char** argv, int* exit_code)` you
// define; when it returns true, main() returns *exit_code at once, without
// a runtime or doctest. Use it to let the test binary act as a child
// process of its own tests (re-executed with a flag of yours) for cases
// that must run in a fresh process, such as those that finalize Python.
//
// Per test case, a fixture gives the GIL, or a fresh sub-interpreter so that
// no state leaks between cases:
//
//   TEST_CASE_FIXTURE(pyscope::testing::InFreshInterpreter, "parses") {
//     PYSCOPE_ASSERT_GIL_HELD();     // for clang -Wthread-safety
//     pyscope::Exec("import json; data = json.loads('[1]')");
//     PYSCOPE_CHECK_RAISES(pyscope::Exec("json.loads('[')"),
//     "json.decoder.JSONDecodeError");
//   }
//
// Include doctest before this header.

#ifndef PYSCOPE_TESTING_H_
#define PYSCOPE_TESTING_H_

#ifndef DOCTEST_VERSION_STR
#error "include <doctest/doctest.h> before pyscope/testing.h"
#endif

#include <cstdio>
#include <string>

#include "pyscope/pyscope.h"

namespace pyscope::testing {

// Holds the GIL of the main interpreter for the test case.
struct WithGil {
  GILGuard gil;
};

// Creates a sub-interpreter for the test case and holds its GIL; the
// interpreter is ended when the case ends. Use it to keep Python state
// (sys.modules, __main__, monkey-patching) from leaking between test cases.
// The settings are SubInterpreterOptions::Default(), which every supported
// CPython creates: Legacy() on builds with a GIL, so extension modules load
// as in the main interpreter; on the free-threaded build (3.13t, 3.14t)
// Legacy() with check_multi_interp_extensions = true, because that build
// refuses single-phase init extension modules in sub-interpreters: such a
// module raises ImportError inside the fixture there.
struct InFreshInterpreter {
  SubInterpreter interpreter;
  GILGuard gil{interpreter};
};

}  // namespace pyscope::testing

// CHECKs that `expression` throws pyscope::PythonError whose type_name() is
// `expected_type` (as CPython prints it: "ValueError",
// "json.decoder.JSONDecodeError"); when another one was raised, the failure
// message carries its traceback.
#define PYSCOPE_CHECK_RAISES(expression, expected_type)                      \
  do {                                                                       \
    bool pyscope_raised = false;                                             \
    try {                                                                    \
      expression;                                                            \
    } catch (const ::pyscope::PythonError& pyscope_error) {                  \
      pyscope_raised = true;                                                 \
      CHECK_MESSAGE(pyscope_error.type_name() == std::string(expected_type), \
                    "raised " << pyscope_error.type_name() << ": "           \
                              << pyscope_error.message() << "\n"             \
                              << pyscope_error.traceback());                 \
    }                                                                        \
    CHECK_MESSAGE(pyscope_raised, #expression " raised no Python error");    \
  } while (false)

// CHECKs that `expression` does not throw pyscope::PythonError; on failure
// the message carries the Python traceback.
#define PYSCOPE_CHECK_NO_RAISE(expression)                                   \
  do {                                                                       \
    try {                                                                    \
      expression;                                                            \
    } catch (const ::pyscope::PythonError& pyscope_error) {                  \
      FAIL_CHECK(#expression " raised " << pyscope_error.type_name() << ": " \
                                        << pyscope_error.message() << "\n"   \
                                        << pyscope_error.traceback());       \
    }                                                                        \
  } while (false)

#ifdef PYSCOPE_TESTING_MAIN
#ifdef PYSCOPE_TESTING_OPTIONS
::pyscope::RuntimeOptions PyscopeTestRuntimeOptions();
#endif
#ifdef PYSCOPE_TESTING_PRE_MAIN
bool PyscopeTestingPreMain(int argc, char** argv, int* exit_code);
#endif

int main(int argc, char** argv) {
#ifdef PYSCOPE_TESTING_PRE_MAIN
  int pre_main_exit_code = 0;
  if (PyscopeTestingPreMain(argc, argv, &pre_main_exit_code)) {
    return pre_main_exit_code;
  }
#endif
  doctest::Context context(argc, argv);
  if (context.shouldExit()) return context.run();
#ifdef PYSCOPE_TESTING_OPTIONS
  const ::pyscope::RuntimeOptions options = PyscopeTestRuntimeOptions();
#else
  const ::pyscope::RuntimeOptions options =
      ::pyscope::RuntimeOptions::Isolated();
#endif
  auto runtime = ::pyscope::ScopedRuntime::Create(options);
  if (!runtime.ok()) {
    std::fprintf(stderr, "pyscope testing: cannot start Python: %s\n",
                 runtime.status().ToString().c_str());
    return 2;
  }
  int result = context.run();
  const absl::Status finalized = (*runtime)->Finalize();
  if (!finalized.ok()) {
    std::fprintf(stderr, "pyscope testing: finalization failed: %s\n",
                 finalized.ToString().c_str());
    if (result == 0) result = 1;
  }
  return result;
}
#endif  // PYSCOPE_TESTING_MAIN

#endif  // PYSCOPE_TESTING_H_
