// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// main() of every doctest binary: runs a scenario in a child process when
// asked to (see scenario.h), the doctest suites otherwise.

#define DOCTEST_CONFIG_IMPLEMENT
#include "doctest/doctest.h"
#include "scenario.h"

int main(int argc, char** argv) {
  int exit_code = 0;
  if (pyscope_test::MaybeRunScenario(argc, argv, &exit_code)) {
    return exit_code;
  }
  doctest::Context context(argc, argv);
  return context.run();
}
