// tracing: count the executed lines of a Python function from C++.
//
// Problem solved: a host that wants coverage or a step budget for the
// Python code it runs installs a C trace function with PyEval_SetTrace,
// digs the file and line out of the raw frame, and must put back whatever
// was installed before (a debugger's or coverage.py's sys.settrace
// function) on every exit path. ScopedTrace is that pairing as a scope,
// with the frame's file, line and function as plain values.

#include <cstdio>
#include <map>

#include "pyscope/pyscope.h"

namespace {

constexpr char kCode[] =
    "def collatz_steps(n):\n"
    "    steps = 0\n"
    "    while n != 1:\n"
    "        if n % 2:\n"
    "            n = 3 * n + 1\n"
    "        else:\n"
    "            n //= 2\n"
    "        steps += 1\n"
    "    return steps\n";

// Runs collatz_steps(n) under a trace and returns how often each of its
// lines ran.
std::map<int, int> LinesRun(int n, long* result) PYSCOPE_REQUIRES_GIL {
  std::map<int, int> lines;
  pyscope::ScopedTrace trace([&lines](const pyscope::TraceEvent& event) {
    if (event.kind() == pyscope::TraceEventKind::kLine &&
        event.function() == "collatz_steps") {
      ++lines[event.line()];
    }
  });
  PyObject* value = pyscope::Eval("collatz_steps(" + std::to_string(n) + ")");
  *result = PyLong_AsLong(value);
  Py_DECREF(value);
  return lines;
}  // the previous trace function (here: none) is back

int Run() {
  pyscope::GILGuard gil;
  pyscope::Exec(kCode);
  long steps = 0;
  const std::map<int, int> lines = LinesRun(6, &steps);
  int total = 0;
  std::printf("collatz_steps(6) = %ld\n", steps);
  for (const auto& [line, count] : lines) {
    std::printf("  line %d ran %d time(s)\n", line, count);
    total += count;
  }
  std::printf("%d lines executed\n", total);
  // 6 -> 3 -> 10 -> 5 -> 16 -> 8 -> 4 -> 2 -> 1: eight loop iterations.
  const bool right =
      steps == 8 && lines.at(8) == 8 && lines.at(2) == 1 && lines.at(9) == 1;
  PyObject* after = pyscope::Eval("__import__('sys').gettrace() is None");
  const bool restored = after == Py_True;
  Py_DECREF(after);
  std::printf("trace function restored: %s\n", restored ? "yes" : "no");
  return right && restored ? 0 : 1;
}

}  // namespace

int main() {
  pyscope::ScopedRuntime python;
  return Run();
}
