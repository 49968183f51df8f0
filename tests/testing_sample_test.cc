// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// samples/testing.cc as a user runs it: its suite passes, and its case that
// fails on purpose (run with --no-skip) fails with the Python traceback in
// the failure message.

#include <string>

#include "doctest/doctest.h"
#include "support/subprocess.h"

namespace {

using pyscope_test::ChildResult;
using pyscope_test::RunChild;

TEST_CASE("the testing sample passes, and shows tracebacks on failure") {
  ChildResult passing = RunChild({PYSCOPE_TESTING_SAMPLE}, absl::Seconds(60));
  REQUIRE_MESSAGE(passing.ExitedWith(0), passing.Describe());
  CHECK(passing.out.find("3 passed | 0 failed | 1 skipped") !=
        std::string::npos);

  ChildResult failing =
      RunChild({PYSCOPE_TESTING_SAMPLE, "--no-skip",
                "--test-case=a failure shows the Python traceback"},
               absl::Seconds(60));
  REQUIRE_MESSAGE(failing.exited, failing.Describe());
  CHECK(failing.exit_code != 0);
  const std::string& report = failing.out;
  CHECK(report.find("raised ValueError: negative side: -4") !=
        std::string::npos);
  CHECK(report.find("Traceback (most recent call last):") != std::string::npos);
  CHECK(report.find("line 3, in total") != std::string::npos);
}

}  // namespace
