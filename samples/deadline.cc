// deadline: stop runaway Python code after 100 ms, in the main interpreter
// and inside a sub-interpreter.
//
// Problem solved: a host that runs plugin or user code cannot let an
// endless loop freeze it. The raw recipe (a timer thread that takes the GIL
// and calls PyThreadState_SetAsyncExc with the right thread id, in the
// right interpreter) also has to make sure a timer that fires late never
// raises into unrelated code. ScopedDeadline is that recipe as a scope.

#include <chrono>
#include <cstdio>
#include <string>

#include "pyscope/pyscope.h"

namespace {

constexpr char kRunaway[] =
    "count = 0\n"
    "while True:\n"
    "    count += 1\n";

// Runs `code` with a deadline of `budget` in the interpreter this thread is
// attached to; prints what happened. True if the deadline stopped it.
bool RunWithBudget(const char* where, const char* code,
                   absl::Duration budget) PYSCOPE_REQUIRES_GIL {
  const auto start = std::chrono::steady_clock::now();
  pyscope::ScopedDeadline deadline(budget);
  const absl::Status status = pyscope::TryExec(code);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - start)
                      .count();
  const std::string first_line(
      status.message().substr(0, status.message().find('\n')));
  std::printf("%s: stopped after %lld ms (%s): %s\n", where,
              static_cast<long long>(ms),
              deadline.expired() ? "deadline" : "not by the deadline",
              status.ok() ? "finished" : first_line.c_str());
  return deadline.expired() && !status.ok();
}

bool InMain() {
  pyscope::GILGuard gil;
  return RunWithBudget("main interpreter", kRunaway, absl::Milliseconds(100));
}

bool InSubInterpreter(pyscope::SubInterpreter& plugin) {
  pyscope::GILGuard gil(plugin);
  return RunWithBudget("sub-interpreter", kRunaway, absl::Milliseconds(100));
}

bool QuickCodeIsUntouched() {
  pyscope::GILGuard gil;
  // The deadline ends with its scope: the code after it is never hit.
  {
    pyscope::ScopedDeadline deadline(absl::Milliseconds(20));
    pyscope::Exec("quick = sum(range(100))");
  }
  return pyscope::TryExec(
             "import time\n"
             "end = time.monotonic() + 0.1\n"
             "while time.monotonic() < end:\n"
             "    pass\n")
      .ok();
}

}  // namespace

int main() {
  pyscope::ScopedRuntime python;
  pyscope::SubInterpreter plugin;
  const bool main_stopped = InMain();
  const bool sub_stopped = InSubInterpreter(plugin);
  const bool untouched = QuickCodeIsUntouched();
  std::printf("code after a finished deadline ran undisturbed: %s\n",
              untouched ? "yes" : "no");
  return main_stopped && sub_stopped && untouched ? 0 : 1;
}
