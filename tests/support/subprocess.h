// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Runs a child process with a timeout and captures what it printed, so that
// tests can exercise code that may hang or abort without taking the test
// binary down with it.

#ifndef PYSCOPE_TESTS_SUPPORT_SUBPROCESS_H_
#define PYSCOPE_TESTS_SUPPORT_SUBPROCESS_H_

#include <string>
#include <vector>

#include "absl/time/time.h"

namespace pyscope_test {

// How a child process ended, and what it wrote.
struct ChildResult {
  // False if the child could not be started (`error` says why).
  bool started = false;
  std::string error;
  // The child called exit() (or returned from main) with `exit_code`.
  bool exited = false;
  int exit_code = -1;
  // The child was ended by signal `term_signal` (0 if it exited). A child
  // killed for running out of time reports SIGKILL here and `timed_out`.
  int term_signal = 0;
  bool timed_out = false;
  absl::Duration elapsed;
  std::string out;
  std::string err;

  // True if the child exited on its own with `code`.
  bool ExitedWith(int code) const { return exited && exit_code == code; }
  // True if the child was ended by `signal` and did not time out.
  bool KilledBy(int signal) const {
    return !exited && !timed_out && term_signal == signal;
  }
  // One paragraph with everything above, for test failure messages.
  std::string Describe() const;
};

// Runs `argv` (argv[0] is the executable's path; no PATH lookup) with the
// test's environment plus `extra_env` ("NAME=value" entries). Reads stdout
// and stderr until the child ends; kills it with SIGKILL if it is still
// running after `timeout`. Thread-compatible: concurrent calls are safe
// (the pipes are close-on-exec, so children never inherit each other's).
ChildResult RunChild(const std::vector<std::string>& argv,
                     absl::Duration timeout,
                     const std::vector<std::string>& extra_env = {});

// The path of the running executable (/proc/self/exe resolved).
std::string SelfExecutable();

}  // namespace pyscope_test

#endif  // PYSCOPE_TESTS_SUPPORT_SUBPROCESS_H_
