// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// What RuntimeOptions registers before initialization: built-in modules,
// audit hooks and before_initialize callbacks, at every initialization.

#include <atomic>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "doctest/doctest.h"
#include "pyscope/pyscope.h"
#include "support/python_helpers.h"
#include "support/scenario.h"

namespace {

using pyscope::BuiltinModule;
using pyscope::GILGuard;
using pyscope::RuntimeOptions;
using pyscope::ScopedRuntime;
using pyscope::SubInterpreter;
using pyscope_test::EvalBool;
using pyscope_test::EvalLong;
using pyscope_test::TestOptions;

// A single-phase module: one PyInit_ function.
PyObject* InitHostSingle() {
  static PyModuleDef def = {PyModuleDef_HEAD_INIT,
                            "host_single",
                            nullptr,
                            -1,
                            nullptr,
                            nullptr,
                            nullptr,
                            nullptr,
                            nullptr};
  PyObject* module = PyModule_Create(&def);
  if (module != nullptr) PyModule_AddIntConstant(module, "answer", 42);
  return module;
}

// A multi-phase module that supports own-GIL interpreters, by definition.
int ExecHostMulti(PyObject* module) {
  return PyModule_AddIntConstant(module, "answer", 7);
}
PyModuleDef_Slot host_multi_slots[] = {
    {Py_mod_exec, reinterpret_cast<void*>(&ExecHostMulti)},
    pyscope::detail::compat::PerInterpreterGilSupportedSlot(),
    {0, nullptr}};
PyModuleDef host_multi_def = {
    PyModuleDef_HEAD_INIT, "host_multi", nullptr, 0,      nullptr,
    host_multi_slots,      nullptr,      nullptr, nullptr};

RuntimeOptions WithModules() {
  RuntimeOptions options = TestOptions();
  options.builtin_modules = {
      BuiltinModule::FromInit("host_single", &InitHostSingle),
      BuiltinModule::FromDefinition("host_multi", &host_multi_def)};
  return options;
}

absl::StatusCode CreateCode(const RuntimeOptions& options) {
  return ScopedRuntime::Create(options).status().code();
}

TEST_SUITE("builtin_modules") {
  TEST_CASE("registered modules import as built-ins, every initialization") {
    for (int cycle = 0; cycle < 3; ++cycle) {
      CAPTURE(cycle);
      ScopedRuntime runtime(WithModules());
      GILGuard gil;
      pyscope::Exec("import sys, host_single, host_multi");
      CHECK(EvalLong("host_single.answer") == 42);
      CHECK(EvalLong("host_multi.answer") == 7);
      CHECK(EvalBool("'host_single' in sys.builtin_module_names"));
      CHECK(EvalBool("'host_multi' in sys.builtin_module_names"));
    }
    // A runtime without them does not have them.
    ScopedRuntime plain(TestOptions());
    GILGuard gil;
    CHECK(pyscope::TryExec("import host_single")
              .message()
              .find("ModuleNotFoundError") != std::string::npos);
  }

  TEST_CASE("sub-interpreters import them; multi-phase also with own GIL") {
    ScopedRuntime runtime(WithModules());
    for (const auto& created : pyscope_test::CreatableOptions()) {
      const char* name = created.first;
      const pyscope::SubInterpreterOptions& options = created.second;
      CAPTURE(name);
      SubInterpreter sub(options);
      sub.Exec("import host_multi");
      CHECK(sub.Call([]() PYSCOPE_REQUIRES_GIL {
        return EvalLong("host_multi.answer");
      }) == 7);
      // A multi-phase module is a new module object per interpreter.
      sub.Exec("host_multi.mine = 1");
      GILGuard gil;
      pyscope::Exec("import host_multi");
      CHECK_FALSE(EvalBool("hasattr(host_multi, 'mine')"));
    }
  }

  TEST_CASE("a duplicate or reserved name is kAlreadyExists") {
    RuntimeOptions twice = WithModules();
    twice.builtin_modules.push_back(
        BuiltinModule::FromInit("host_single", &InitHostSingle));
    auto status = ScopedRuntime::Create(twice).status();
    CHECK(status.code() == absl::StatusCode::kAlreadyExists);
    CHECK(status.message().find("listed twice") != std::string::npos);

    RuntimeOptions reserved = TestOptions();
    reserved.builtin_modules = {
        BuiltinModule::FromInit("sys", &InitHostSingle)};
    status = ScopedRuntime::Create(reserved).status();
    CHECK(status.code() == absl::StatusCode::kAlreadyExists);
    CHECK(status.message().find("\"sys\"") != std::string::npos);
    // Nothing was left registered: the next runtime starts fine.
    CHECK(ScopedRuntime::Create(WithModules()).ok());
  }

  TEST_CASE("malformed entries are kInvalidArgument") {
    RuntimeOptions options = TestOptions();
    options.builtin_modules = {
        BuiltinModule::FromInit("1abc", &InitHostSingle)};
    CHECK(CreateCode(options) == absl::StatusCode::kInvalidArgument);
    options.builtin_modules = {
        BuiltinModule::FromInit("a..b", &InitHostSingle)};
    CHECK(CreateCode(options) == absl::StatusCode::kInvalidArgument);
    BuiltinModule neither;
    neither.name = "neither";
    options.builtin_modules = {neither};
    CHECK(CreateCode(options) == absl::StatusCode::kInvalidArgument);
    BuiltinModule both = BuiltinModule::FromInit("both", &InitHostSingle);
    both.definition = &host_multi_def;
    options.builtin_modules = {both};
    CHECK(CreateCode(options) == absl::StatusCode::kInvalidArgument);
  }

  TEST_CASE("audit hooks see events from the start, at every initialization") {
    static std::atomic<int> allowed_seen{0};
    static std::atomic<int> imports_seen{0};
    RuntimeOptions options = TestOptions();
    options.audit_hooks.push_back(
        [](std::string_view event, PyObject*) -> absl::Status {
          if (event == "pyscope.test.allowed") ++allowed_seen;
          if (event == "import") ++imports_seen;
          if (event == "pyscope.test.refuse") {
            return absl::PermissionDeniedError("not allowed here");
          }
          return absl::OkStatus();
        });
    for (int cycle = 0; cycle < 2; ++cycle) {
      CAPTURE(cycle);
      allowed_seen = 0;
      imports_seen = 0;
      ScopedRuntime runtime(options);
      // Initialization itself imports (encodings, site): seen.
      CHECK(imports_seen.load() > 0);
      GILGuard gil;
      pyscope::Exec("import sys\nsys.audit('pyscope.test.allowed', 1)");
      // One hook per runtime: an earlier runtime's hook is not called too.
      CHECK(allowed_seen.load() == 1);
      absl::Status refused =
          pyscope::TryExec("sys.audit('pyscope.test.refuse')");
      CHECK(refused.message().find("PermissionError: not allowed here") !=
            std::string::npos);
      // Sub-interpreters are audited by the same runtime hook.
      SubInterpreter sub;
      CHECK(sub.TryExec("import sys\nsys.audit('pyscope.test.refuse')")
                .message()
                .find("PermissionError") != std::string::npos);
    }
  }

  TEST_CASE("before_initialize runs before every initialization") {
    int calls = 0;
    RuntimeOptions options = TestOptions();
    options.before_initialize.push_back([&calls] {
      ++calls;
      // CPython is not running yet.
      return Py_IsInitialized() ? absl::InternalError("too late")
                                : absl::OkStatus();
    });
    for (int cycle = 0; cycle < 3; ++cycle) {
      ScopedRuntime runtime(options);
    }
    CHECK(calls == 3);
    options.before_initialize.push_back(
        [] { return absl::UnavailableError("allocator not ready"); });
    auto status = ScopedRuntime::Create(options).status();
    CHECK(status.code() == absl::StatusCode::kUnavailable);
    CHECK(status.message() == "allocator not ready");
    CHECK_FALSE(Py_IsInitialized());
  }
}

// Adopting a runtime the host started is too late for either.
PYSCOPE_SCENARIO(AdoptRefusesPreInitRegistrations) {
  Py_InitializeEx(0);
  RuntimeOptions options = WithModules();
  auto adopted = ScopedRuntime::Adopt(options);
  pyscope_test::PrintFact("modules_code",
                          static_cast<long>(adopted.status().code()));
  options.builtin_modules.clear();
  options.audit_hooks.push_back(
      [](std::string_view, PyObject*) { return absl::OkStatus(); });
  adopted = ScopedRuntime::Adopt(options);
  pyscope_test::PrintFact("hooks_code",
                          static_cast<long>(adopted.status().code()));
  options.audit_hooks.clear();
  adopted = ScopedRuntime::Adopt(options);
  pyscope_test::PrintFact("plain_ok", adopted.ok() ? 1L : 0L);
  adopted->reset();
  Py_FinalizeEx();
  return 0;
}

TEST_CASE(
    "builtin_modules and audit_hooks with Adopt are kFailedPrecondition") {
  auto child = pyscope_test::RunScenario("AdoptRefusesPreInitRegistrations");
  REQUIRE_MESSAGE(child.ExitedWith(0), child.Describe());
  const std::string precondition =
      std::to_string(static_cast<int>(absl::StatusCode::kFailedPrecondition));
  CHECK(pyscope_test::FactOf(child, "modules_code") == precondition);
  CHECK(pyscope_test::FactOf(child, "hooks_code") == precondition);
  CHECK(pyscope_test::FactOf(child, "plain_ok") == "1");
}

}  // namespace
