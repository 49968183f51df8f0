// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// The re-initialization refusal (RuntimeOptions::ReinitHazards): after a
// runtime that loaded an extension module known not to survive
// re-initialization, or that finalized with Python daemon threads running,
// a new ScopedRuntime is refused with a status naming them, or warns
// through the hook and starts, as the options choose. Every case runs in a
// child process of its own (the hazards belong to the process).

#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "doctest/doctest.h"
#include "pyscope/pyscope.h"
#include "support/python_helpers.h"
#include "support/scenario.h"

namespace {

using pyscope::GILGuard;
using pyscope::RuntimeOptions;
using pyscope::ScopedRuntime;
using pyscope_test::ChildResult;
using pyscope_test::FactOf;
using pyscope_test::HasFact;
using pyscope_test::PrintFact;
using pyscope_test::RunScenario;
using pyscope_test::TestOptions;

// The listed modules this CPython can import (numpy only where installed);
// with `loaded_from_file`, only those that are not built into libpython.
std::vector<std::string> ImportableUnsafeModules(bool loaded_from_file) {
  std::vector<std::string> names;
  size_t count = 0;
  const auto* unsafe = pyscope::detail::compat::ReinitUnsafeModules(&count);
  ScopedRuntime runtime(TestOptions());
  GILGuard gil;
  for (size_t i = 0; i < count; ++i) {
    PyObject* spec = pyscope::Eval(absl::StrCat(
        "__import__('importlib.util').util.find_spec('", unsafe[i].module,
        "') is not None", loaded_from_file ? " and '" : "",
        loaded_from_file ? unsafe[i].module : "",
        loaded_from_file ? "' not in __import__('sys').builtin_module_names"
                         : ""));
    if (spec == Py_True) names.push_back(unsafe[i].module);
    Py_DECREF(spec);
  }
  return names;
}

void PrintStart(const char* key, const RuntimeOptions& options) {
  auto next = ScopedRuntime::Create(options);
  PrintFact(absl::StrCat(key, "_code").c_str(),
            absl::StatusCodeToString(next.status().code()));
  PrintFact(absl::StrCat(key, "_message").c_str(),
            std::string(next.status().message()));
  if (next.ok()) {
    {
      GILGuard gil;
      PrintFact(absl::StrCat(key, "_works").c_str(),
                pyscope_test::EvalLong("6 * 7"));
    }
    (void)(*next)->Finalize();
  }
}

// A daemon thread blocked for good (it never wakes, so it cannot touch the
// next runtime; the hazard is what pyscope notes, not a crash here).
PYSCOPE_SCENARIO(DaemonThreadAtFinalization) {
  {
    ScopedRuntime first(TestOptions());
    GILGuard gil;
    pyscope::Exec(
        "import threading\n"
        "threading.Thread(target=threading.Event().wait, daemon=True)"
        ".start()\n");
  }
  PrintFact("hazards", absl::StrJoin(pyscope::PendingReinitHazards(), "|"));
  PrintStart("refused", TestOptions());
  RuntimeOptions anyway = TestOptions();
  anyway.reinit_hazards = RuntimeOptions::ReinitHazards::kWarnAndTry;
  static std::string warning;
  anyway.reinit_warning = [](const std::string& text) { warning = text; };
  PrintStart("anyway", anyway);
  PrintFact("warning", warning);
  return 0;
}

// No daemon thread, no listed module: nothing is noted.
PYSCOPE_SCENARIO(CleanGenerations) {
  for (int i = 0; i < 3; ++i) {
    ScopedRuntime runtime(TestOptions());
    GILGuard gil;
    pyscope::Exec(
        "import json, math, threading\n"
        "t = threading.Thread(target=lambda: None, daemon=True)\n"
        "t.start(); t.join()\n");
  }
  PrintFact("hazards", absl::StrJoin(pyscope::PendingReinitHazards(), "|"));
  PrintStart("next", TestOptions());
  return 0;
}

// Each listed module this CPython has, imported in the main interpreter or
// only inside a sub-interpreter (its shared object stays loaded; a listed
// module built into libpython, _tracemalloc on 3.9-3.11, is seen only when
// the main interpreter imported it: docs/pitfalls.md).
int ImportListedModules(bool in_sub_interpreter) {
  const std::vector<std::string> modules =
      ImportableUnsafeModules(/*loaded_from_file=*/in_sub_interpreter);
  PrintFact("modules", absl::StrJoin(modules, ","));
  if (modules.empty()) return 0;
  {
    ScopedRuntime runtime(TestOptions());
    if (in_sub_interpreter) {
      pyscope::SubInterpreter sub;
      GILGuard gil(sub);
      for (const std::string& m : modules) pyscope::Exec("import " + m);
    } else {
      GILGuard gil;
      for (const std::string& m : modules) pyscope::Exec("import " + m);
    }
  }
  PrintFact("hazards", absl::StrJoin(pyscope::PendingReinitHazards(), "|"));
  PrintStart("refused", TestOptions());
  RuntimeOptions anyway = TestOptions();
  anyway.reinit_hazards = RuntimeOptions::ReinitHazards::kWarnAndTry;
  anyway.reinit_warning = [](const std::string& text) {
    PrintFact("warned", text);
  };
  PrintStart("anyway", anyway);
  return 0;
}

PYSCOPE_SCENARIO(ListedModulesInMain) { return ImportListedModules(false); }
PYSCOPE_SCENARIO(ListedModulesInSub) { return ImportListedModules(true); }

// A hook that throws fails construction with kInternal; nothing starts.
PYSCOPE_SCENARIO(ThrowingWarningHook) {
  {
    ScopedRuntime first(TestOptions());
    GILGuard gil;
    pyscope::Exec(
        "import threading\n"
        "threading.Thread(target=threading.Event().wait, daemon=True)"
        ".start()\n");
  }
  RuntimeOptions anyway = TestOptions();
  anyway.reinit_hazards = RuntimeOptions::ReinitHazards::kWarnAndTry;
  anyway.reinit_warning = [](const std::string&) {
    throw std::runtime_error("hook failed");
  };
  PrintStart("thrown", anyway);
  PrintFact("initialized", static_cast<long>(Py_IsInitialized()));
  return 0;
}

ChildResult Run(const char* scenario) {
  ChildResult child = RunScenario(scenario, absl::Seconds(60));
  INFO(child.Describe());
  REQUIRE(child.ExitedWith(0));
  return child;
}

TEST_SUITE("reinit_refusal") {
  TEST_CASE("daemon threads at finalization: refused by default, or warned") {
    const ChildResult child = Run("DaemonThreadAtFinalization");
    INFO(child.Describe());
    CHECK(FactOf(child, "hazards")
              .find("1 Python daemon thread(s) running at finalization "
                    "(generation ") != std::string::npos);
    CHECK(HasFact(child, "refused_code=FAILED_PRECONDITION"));
    const std::string refused = FactOf(child, "refused_message");
    CHECK(refused.find("daemon thread") != std::string::npos);
    CHECK(refused.find("ReinitHazards::kWarnAndTry") != std::string::npos);
    CHECK(HasFact(child, "anyway_code=OK"));
    CHECK(HasFact(child, "anyway_works=42"));
    CHECK(FactOf(child, "warning").find("daemon thread") != std::string::npos);
  }

  TEST_CASE("generations without hazards re-initialize freely") {
    const ChildResult child = Run("CleanGenerations");
    CHECK(HasFact(child, "hazards="));
    CHECK(HasFact(child, "next_code=OK"));
    CHECK(HasFact(child, "next_works=42"));
  }

  TEST_CASE("a listed module is named, from main or a sub-interpreter") {
    for (const char* scenario : {"ListedModulesInMain", "ListedModulesInSub"}) {
      CAPTURE(scenario);
      const ChildResult child = Run(scenario);
      INFO(child.Describe());
      const std::string modules = FactOf(child, "modules");
      if (modules.empty()) {
        // 3.9, 3.10, 3.13 without numpy: nothing listed can be imported.
        MESSAGE("no listed module importable on this CPython");
        continue;
      }
      CHECK(HasFact(child, "refused_code=FAILED_PRECONDITION"));
      const std::string refused = FactOf(child, "refused_message");
      for (const absl::string_view m : absl::StrSplit(modules, ',')) {
        CHECK(refused.find(absl::StrCat("extension module ", m, " (")) !=
              std::string::npos);
        CHECK(FactOf(child, "warned").find(absl::StrCat("module ", m)) !=
              std::string::npos);
      }
      CHECK(refused.find("Start Python in a new process") != std::string::npos);
      // Tried anyway, without importing them again: it starts and works.
      CHECK(HasFact(child, "anyway_code=OK"));
      CHECK(HasFact(child, "anyway_works=42"));
    }
  }

  TEST_CASE("a warning hook that throws fails construction, starts nothing") {
    const ChildResult child = Run("ThrowingWarningHook");
    CHECK(HasFact(child, "thrown_code=INTERNAL"));
    CHECK(FactOf(child, "thrown_message")
              .find("reinit_warning threw: hook failed") != std::string::npos);
    CHECK(HasFact(child, "initialized=0"));
  }

  TEST_CASE("an unknown reinit_hazards value is kInvalidArgument") {
    RuntimeOptions options = TestOptions();
    options.reinit_hazards = static_cast<RuntimeOptions::ReinitHazards>(9);
    const absl::Status status = pyscope::ValidateRuntimeOptions(options);
    CHECK(status.code() == absl::StatusCode::kInvalidArgument);
    CHECK(std::string(status.message()).find("reinit_hazards") !=
          std::string::npos);
  }
}

}  // namespace
