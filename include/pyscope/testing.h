// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// doctest integration for tests of code that embeds Python. Not included by
// pyscope/pyscope.h.
//
// One runtime per test binary: in exactly one translation unit write
//
//   #define DOCTEST_CONFIG_IMPLEMENT
//   #define PYSCOPE_TESTING_MAIN
//   #include <doctest/doctest.h>
//   #include "pyscope/testing.h"
//
// and the binary gets a main() that parses doctest's command line (and
// returns at once for --help and similar), starts one ScopedRuntime for the
// whole binary (RuntimeOptions::Isolated(), or the options returned by a
// `pyscope::RuntimeOptions PyscopeTestRuntimeOptions()` you define in the
// global namespace when PYSCOPE_TESTING_OPTIONS is defined), runs the
// tests, and finalizes the runtime. If the runtime cannot start, main()
// prints the status and returns 2; if finalization reports an error, it
// prints it and fails the run (exit code 1 when the tests passed).
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
// Include doctest before this header (#error otherwise).

#ifndef PYSCOPE_TESTING_H_
#define PYSCOPE_TESTING_H_

#ifndef DOCTEST_VERSION_STR
#error "include <doctest/doctest.h> before pyscope/testing.h"
#endif

#include <cstdio>
#include <string>

#include "pyscope/pyscope.h"

namespace pyscope::testing {

// A doctest fixture (TEST_CASE_FIXTURE(pyscope::testing::WithGil, "..."))
// that holds the GIL for the test case, attached to the main interpreter
// (or, on a thread already in an interpreter, that one). The thread-safety
// analysis does not see the member guard in the test body: start the body
// with PYSCOPE_ASSERT_GIL_HELD() if you compile tests with -Wthread-safety.
struct WithGil {
  GILGuard gil;
};

// Creates a sub-interpreter for the test case and holds its GIL; when the
// case ends, the guard ends first, then the interpreter is ended. Use it to
// keep Python state (sys.modules, __main__, monkey-patching) from leaking
// between test cases. The settings are SubInterpreterOptions::Default(),
// which every supported CPython creates: Legacy() on builds with a GIL, so
// extension modules load as in the main interpreter; on the free-threaded
// build (3.13t, 3.14t) Legacy() with check_multi_interp_extensions = true,
// because that build refuses single-phase init extension modules in
// sub-interpreters: such a module raises ImportError inside the fixture
// there. Construction throws pyscope::Error (failing the test case) if the
// interpreter cannot be created or entered. The same thread-safety note as
// for WithGil applies.
struct InFreshInterpreter {
  SubInterpreter interpreter;
  GILGuard gil{interpreter};
};

}  // namespace pyscope::testing

// CHECKs that `expression` (a statement is fine) throws pyscope::PythonError
// whose type_name() is `expected_type` (as CPython prints it: "ValueError",
// "json.decoder.JSONDecodeError"). Fails the check, without aborting the
// test case, if nothing is raised or the type differs; when another one was
// raised, the failure message carries its type, message and traceback.
// Other C++ exceptions propagate.
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
// the message carries the exception's type, message and traceback.
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
