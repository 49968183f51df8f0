// parallel_interpreters: CPU-bound Python on several cores at once.
//
// Problem solved: native threads that share one interpreter take turns on its
// GIL, so pure-Python work gets no faster with more threads. From CPython
// 3.12 (PEP 684) a sub-interpreter can have a GIL of its own: N threads, each
// in its own SubInterpreterOptions::Isolated() interpreter, run in parallel.
// Before 3.12 the sample falls back to Legacy() interpreters, which share the
// main GIL (so expect no speedup there), and says so.
//
// Usage: parallel_interpreters [threads]   (default 2)

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

#include "pyscope/pyscope.h"

namespace {

// The same pure-Python function runs in every interpreter.
constexpr char kDefineWork[] = R"py(
def work(n):
    total = 0
    for i in range(n):
        total += i * i % 7
    return total
)py";
constexpr char kRunWork[] = "result = work(1_500_000)";

// Runs job(i) for i in [0, n) on n threads at once; returns the wall time.
template <typename Job>
double TimeOnThreads(int n, Job job) {
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) threads.emplace_back(job, i);
  for (std::thread& thread : threads) thread.join();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
      .count();
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::max(1, std::atoi(argv[1])) : 2;
  pyscope::ScopedRuntime python;

  pyscope::SubInterpreterOptions options =
      pyscope::SubInterpreterOptions::Isolated();
  if (absl::Status own_gil = pyscope::ValidateSubInterpreterOptions(options);
      !own_gil.ok()) {
    std::printf(
        "CPython %d.%d has no per-interpreter GIL (3.12+): using "
        "Legacy() interpreters, which share one GIL.\n",
        PY_MAJOR_VERSION, PY_MINOR_VERSION);
    options = pyscope::SubInterpreterOptions::Legacy();
  }
  std::vector<std::unique_ptr<pyscope::SubInterpreter>> interpreters;
  for (int i = 0; i < n; ++i) {
    interpreters.push_back(std::make_unique<pyscope::SubInterpreter>(options));
    interpreters.back()->Exec(kDefineWork);
  }
  {
    pyscope::GILGuard gil;
    pyscope::Exec(kDefineWork);
  }

  // 1. One interpreter runs the n jobs one after another.
  const double one = TimeOnThreads(1, [&](int) {
    for (int i = 0; i < n; ++i) interpreters[0]->Exec(kRunWork);
  });
  // 2. n threads share the main interpreter (and its GIL).
  const double shared = TimeOnThreads(n, [](int) {
    pyscope::GILGuard gil;
    pyscope::Exec(kRunWork);
  });
  // 3. n threads, each in an interpreter of its own.
  const double own = TimeOnThreads(n, [&](int i) {
    pyscope::GILGuard gil(*interpreters[i]);
    pyscope::Exec(kRunWork);
  });

  const bool own_gils =
      options.gil == pyscope::SubInterpreterOptions::Gil::kOwn;
  std::printf(
      "%d jobs: one interpreter %.3f s, %d threads sharing one GIL "
      "%.3f s, %d interpreters (%s) %.3f s\n",
      n, one, n, shared, n, own_gils ? "own GILs" : "shared GIL", own);
  std::printf(
      "speedup: %.2fx over one interpreter, %.2fx over %d threads "
      "sharing one GIL\n",
      one / own, shared / own, n);

  interpreters.clear();  // ~SubInterpreter ends each one
  return python.Finalize().ok() ? 0 : 1;
}
