// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Scenarios: functions of a test binary that run in a child process of their
// own. Each test binary links test_main.cc, which runs the scenario named on
// the command line (`<binary> --pyscope-scenario=<name>`) instead of the
// doctest suites. A scenario starts in a fresh process (no runtime was ever
// created there), may hang or abort, and reports by printing and by its exit
// code; the test that runs it asserts both.
//
//   PYSCOPE_SCENARIO(GuardBeforeRuntime) {
//     pyscope::GILGuard gil(std::nothrow);
//     std::printf("code=%d\n", static_cast<int>(gil.status().code()));
//     return 0;
//   }
//
//   TEST_CASE("...") {
//     ChildResult child = RunScenario("GuardBeforeRuntime");
//     REQUIRE_MESSAGE(child.ExitedWith(0), child.Describe());
//   }

#ifndef PYSCOPE_TESTS_SUPPORT_SCENARIO_H_
#define PYSCOPE_TESTS_SUPPORT_SCENARIO_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "subprocess.h"

namespace pyscope_test {

using ScenarioFunction = int (*)();

// Registers a scenario under `name` (static initialization).
class ScenarioRegistrar {
 public:
  ScenarioRegistrar(const char* name, ScenarioFunction function);
};

// Runs the scenario `name` of this binary in a child process.
// `extra_env` entries ("NAME=value") are added to the child's environment.
ChildResult RunScenario(const std::string& name,
                        absl::Duration timeout = absl::Seconds(20),
                        const std::vector<std::string>& extra_env = {});

// Called by test_main.cc: if argv names a scenario, runs it and stores its
// exit code in `*exit_code`, returning true.
bool MaybeRunScenario(int argc, char** argv, int* exit_code);

// Facts: a scenario prints "key=value" lines (PrintFact), the test reads
// them back from the child's stdout (FactOf, HasFact).
void PrintFact(const char* key, long value);
void PrintFact(const char* key, const std::string& value);
void PrintFact(const char* key, const char* value);

// The value of the last "key=..." line the child printed, or "" if none.
std::string FactOf(const ChildResult& child, const std::string& key);

// The name of `status`'s code ("FAILED_PRECONDITION"), for printed facts.
// Valid until the next call on the same thread.
const char* CodeName(const absl::Status& status);

// Whether the child printed the line `fact` ("key=value").
bool HasFact(const ChildResult& child, const std::string& fact);

}  // namespace pyscope_test

#define PYSCOPE_SCENARIO(name)                                            \
  static int name##Scenario();                                            \
  static const ::pyscope_test::ScenarioRegistrar name##ScenarioRegistrar( \
      #name, &name##Scenario);                                            \
  static int name##Scenario()

#endif  // PYSCOPE_TESTS_SUPPORT_SCENARIO_H_
