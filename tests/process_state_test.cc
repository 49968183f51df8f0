// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// What initialization changes in the host process (signal dispositions,
// the LC_CTYPE locale and its coercion, stdio buffering): nothing with the
// isolated default; what CPython changes with Python(), and
// restore_process_state putting it back. Each case runs in a fresh child
// process (the state being measured is the process's own).

#include <signal.h>
#include <stdio_ext.h>

#include <clocale>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "doctest/doctest.h"
#include "pyscope/pyscope.h"
#include "support/python_helpers.h"
#include "support/scenario.h"

namespace {

using pyscope::RuntimeOptions;
using pyscope::ScopedRuntime;
using pyscope_test::ChildResult;
using pyscope_test::FactOf;
using pyscope_test::PrintFact;
using pyscope_test::RunScenario;

const char* Disposition(int signum) {
  struct sigaction action;
  sigaction(signum, nullptr, &action);
  if (action.sa_flags & SA_SIGINFO) return "handler";
  if (action.sa_handler == SIG_DFL) return "default";
  if (action.sa_handler == SIG_IGN) return "ignored";
  return "handler";
}

void PrintState(const char* when) {
  const std::string prefix = std::string(when) + "_";
  PrintFact((prefix + "sigint").c_str(), Disposition(SIGINT));
  PrintFact((prefix + "sigpipe").c_str(), Disposition(SIGPIPE));
  PrintFact((prefix + "sigxfsz").c_str(), Disposition(SIGXFSZ));
  PrintFact((prefix + "lc_ctype").c_str(), std::setlocale(LC_CTYPE, nullptr));
  const char* env = std::getenv("LC_CTYPE");
  PrintFact((prefix + "lc_ctype_env").c_str(),
            env != nullptr ? env : "(unset)");
  // glibc: a stream set unbuffered gets a one-byte buffer. (stdin: the
  // scenario runner makes stdout unbuffered itself; CPython's
  // buffered_stdio = 0 unbuffers stdin, stdout and stderr alike.)
  PrintFact((prefix + "stdio_unbuffered").c_str(),
            __fbufsize(stdin) == 1 ? 1L : 0L);
}

// The C locale in the environment, so that the Python() preset's locale
// coercion (PEP 538) has something to do.
void UseCLocale() {
  unsetenv("LC_ALL");
  unsetenv("PYTHONUNBUFFERED");  // read by the Python() preset
  unsetenv("LC_CTYPE");
  setenv("LANG", "C", 1);
}

int Measure(const RuntimeOptions& options, bool unbuffered = false) {
  UseCLocale();
  if (unbuffered) setenv("PYTHONUNBUFFERED", "1", 1);
  PrintState("before");
  {
    ScopedRuntime runtime(options);
    PrintState("running");
  }
  PrintState("after");
  return 0;
}

PYSCOPE_SCENARIO(IsolatedProcessState) {
  return Measure(pyscope_test::TestOptions());
}

PYSCOPE_SCENARIO(PythonPresetProcessState) {
  return Measure(RuntimeOptions::Python());
}

PYSCOPE_SCENARIO(PythonPresetRestored) {
  RuntimeOptions options = RuntimeOptions::Python();
  options.restore_process_state = true;
  return Measure(options);
}

PYSCOPE_SCENARIO(PythonPresetUnbuffered) {
  return Measure(RuntimeOptions::Python(), /*unbuffered=*/true);
}

void CheckUnchanged(const ChildResult& child, const char* when) {
  for (const char* what : {"sigint", "sigpipe", "sigxfsz", "lc_ctype",
                           "lc_ctype_env", "stdio_unbuffered"}) {
    CAPTURE(what);
    CHECK(FactOf(child, std::string(when) + "_" + what) ==
          FactOf(child, std::string("before_") + what));
  }
}

TEST_SUITE("process_state") {
  TEST_CASE("the isolated default changes nothing in the process") {
    ChildResult child = RunScenario("IsolatedProcessState");
    REQUIRE_MESSAGE(child.ExitedWith(0), child.Describe());
    CHECK(FactOf(child, "before_lc_ctype") == "C");
    CheckUnchanged(child, "running");
    CheckUnchanged(child, "after");
  }

  TEST_CASE("the Python() preset: what CPython changes") {
    ChildResult child = RunScenario("PythonPresetProcessState");
    REQUIRE_MESSAGE(child.ExitedWith(0), child.Describe());
    CHECK(FactOf(child, "running_sigint") == "handler");
    CHECK(FactOf(child, "running_sigpipe") == "ignored");
    CHECK(FactOf(child, "running_sigxfsz") == "ignored");
    // PEP 538: the C locale is coerced to a UTF-8 one, in the environment
    // too (inherited by child processes).
    CHECK(FactOf(child, "running_lc_ctype") != "C");
    CHECK(FactOf(child, "running_lc_ctype_env") != "(unset)");
    // Left behind by Py_FinalizeEx: SIGPIPE / SIGXFSZ stay ignored.
    CHECK(FactOf(child, "after_sigpipe") == "ignored");
    CHECK(FactOf(child, "after_sigxfsz") == "ignored");
    CHECK(FactOf(child, "running_stdio_unbuffered") == "0");
  }

  TEST_CASE("restore_process_state puts it back (Python's SIGINT stays)") {
    ChildResult child = RunScenario("PythonPresetRestored");
    REQUIRE_MESSAGE(child.ExitedWith(0), child.Describe());
    CHECK(FactOf(child, "running_sigint") == "handler");
    for (const char* what :
         {"sigpipe", "sigxfsz", "lc_ctype", "lc_ctype_env"}) {
      CAPTURE(what);
      CHECK(FactOf(child, std::string("running_") + what) ==
            FactOf(child, std::string("before_") + what));
      CHECK(FactOf(child, std::string("after_") + what) ==
            FactOf(child, std::string("before_") + what));
    }
  }

  TEST_CASE("PYTHONUNBUFFERED with the Python() preset unbuffers stdio") {
    ChildResult child = RunScenario("PythonPresetUnbuffered");
    REQUIRE_MESSAGE(child.ExitedWith(0), child.Describe());
    CHECK(FactOf(child, "before_stdio_unbuffered") == "0");
    CHECK(FactOf(child, "running_stdio_unbuffered") == "1");
    // Not put back by Py_FinalizeEx (nor by restore_process_state).
    CHECK(FactOf(child, "after_stdio_unbuffered") == "1");
  }
}

}  // namespace
