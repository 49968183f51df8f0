// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Small helpers shared by the test suites: reading Python values as C++
// values, counting thread states, recording misuse reports.

#ifndef PYSCOPE_TESTS_SUPPORT_PYTHON_HELPERS_H_
#define PYSCOPE_TESTS_SUPPORT_PYTHON_HELPERS_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "pyscope/pyscope.h"

namespace pyscope_test {

// Runtime options for tests: the isolated default with a short drain
// deadline, so that a test that leaves a thread inside a guard fails fast.
pyscope::RuntimeOptions TestOptions();

// Evaluates `expression` in __main__ and converts the result. Throws
// pyscope::PythonError (also when the conversion fails).
long EvalLong(std::string_view expression) PYSCOPE_REQUIRES_GIL;
bool EvalBool(std::string_view expression) PYSCOPE_REQUIRES_GIL;
std::string EvalString(std::string_view expression) PYSCOPE_REQUIRES_GIL;

// The sub-interpreter option sets this CPython creates, by name: Default()
// on every version and build (Legacy() where there is a GIL), Isolated()
// (own GIL) from 3.12.
std::vector<std::pair<const char*, pyscope::SubInterpreterOptions>>
CreatableOptions();

// The number of thread states of `interp`
// (PyInterpreterState_ThreadHead / PyThreadState_Next).
int CountThreadStates(PyInterpreterState* interp) PYSCOPE_REQUIRES_GIL;

// Whether the calling thread holds the GIL through `tstate`, without
// CPython's fatal checks: compares the current thread state.
bool IsCurrent(PyThreadState* tstate);

// The calling thread's gettid().
long ThreadId();

// Creates a fresh directory under /tmp and returns its path.
std::string MakeTempDir();

// Writes `contents` to `path`, creating or truncating it.
void WriteFile(const std::string& path, std::string_view contents);

// Installs a misuse handler that records every report instead of aborting,
// for its scope; restores the previous handler at scope exit.
class RecordingMisuseHandler {
 public:
  RecordingMisuseHandler();
  ~RecordingMisuseHandler();
  RecordingMisuseHandler(const RecordingMisuseHandler&) = delete;
  RecordingMisuseHandler& operator=(const RecordingMisuseHandler&) = delete;

  std::vector<pyscope::MisuseReport> reports() const;

 private:
  static void Record(const pyscope::MisuseReport& report);
  pyscope::MisuseHandler previous_;
};

}  // namespace pyscope_test

#endif  // PYSCOPE_TESTS_SUPPORT_PYTHON_HELPERS_H_
