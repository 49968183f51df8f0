// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0

#include "python_helpers.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace pyscope_test {
namespace {

struct Recorded {
  absl::Mutex mu;
  std::vector<pyscope::MisuseReport> reports ABSL_GUARDED_BY(mu);
};

Recorded& GetRecorded() {
  // Never destroyed: a report may arrive from a thread during exit.
  static Recorded* recorded = new Recorded;
  return *recorded;
}

// Takes ownership of `object` (a new reference, or null with an exception).
PyObject* Checked(PyObject* object) PYSCOPE_REQUIRES_GIL {
  if (object == nullptr) throw pyscope::PythonError::FetchAndClear();
  return object;
}

}  // namespace

pyscope::RuntimeOptions TestOptions() {
  pyscope::RuntimeOptions options = pyscope::RuntimeOptions::Isolated();
  options.drain_deadline = absl::Milliseconds(200);
  return options;
}

long EvalLong(std::string_view expression) {
  PyObject* value = pyscope::Eval(expression);
  const long result = PyLong_AsLong(value);
  Py_DECREF(value);
  if (result == -1) pyscope::ThrowIfPythonError();
  return result;
}

bool EvalBool(std::string_view expression) {
  PyObject* value = pyscope::Eval(expression);
  const int truth = PyObject_IsTrue(value);
  Py_DECREF(value);
  if (truth < 0) throw pyscope::PythonError::FetchAndClear();
  return truth == 1;
}

std::string EvalString(std::string_view expression) {
  PyObject* value = pyscope::Eval(expression);
  PyObject* text = PyObject_Str(value);
  Py_DECREF(value);
  Checked(text);
  Py_ssize_t size = 0;
  const char* data = PyUnicode_AsUTF8AndSize(text, &size);
  if (data == nullptr) {
    Py_DECREF(text);
    throw pyscope::PythonError::FetchAndClear();
  }
  std::string result(data, static_cast<size_t>(size));
  Py_DECREF(text);
  return result;
}

std::vector<std::pair<const char*, pyscope::SubInterpreterOptions>>
CreatableOptions() {
  std::vector<std::pair<const char*, pyscope::SubInterpreterOptions>> result = {
      {"Default", pyscope::SubInterpreterOptions::Default()}};
  if (pyscope::detail::compat::kHasPerInterpreterGil) {
    result.push_back({"Isolated", pyscope::SubInterpreterOptions::Isolated()});
  }
  return result;
}

int CountThreadStates(PyInterpreterState* interp) {
  int count = 0;
  for (PyThreadState* tstate = PyInterpreterState_ThreadHead(interp);
       tstate != nullptr; tstate = PyThreadState_Next(tstate)) {
    ++count;
  }
  return count;
}

bool IsCurrent(PyThreadState* tstate) {
  return tstate != nullptr &&
         pyscope::detail::compat::CurrentThreadStateUnchecked() == tstate;
}

long ThreadId() { return static_cast<long>(::syscall(SYS_gettid)); }

std::string MakeTempDir() {
  char pattern[] = "/tmp/pyscope-test-XXXXXX";
  const char* made = ::mkdtemp(pattern);
  return made != nullptr ? std::string(made) : std::string();
}

void WriteFile(const std::string& path, std::string_view contents) {
  std::ofstream file(path, std::ios::trunc);
  file << contents;
}

RecordingMisuseHandler::RecordingMisuseHandler()
    : previous_(pyscope::SetMisuseHandler(&Record)) {
  Recorded& recorded = GetRecorded();
  absl::MutexLock lock(&recorded.mu);
  recorded.reports.clear();
}

RecordingMisuseHandler::~RecordingMisuseHandler() {
  pyscope::SetMisuseHandler(previous_);
}

std::vector<pyscope::MisuseReport> RecordingMisuseHandler::reports() const {
  Recorded& recorded = GetRecorded();
  absl::MutexLock lock(&recorded.mu);
  return recorded.reports;
}

void RecordingMisuseHandler::Record(const pyscope::MisuseReport& report) {
  Recorded& recorded = GetRecorded();
  absl::MutexLock lock(&recorded.mu);
  recorded.reports.push_back(report);
}

}  // namespace pyscope_test
