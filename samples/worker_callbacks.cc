// worker_callbacks: a pool of native threads calling into Python.
//
// Problem solved: worker threads that call a Python callback (an event
// handler, a scoring function) hang forever in PyGILState_Ensure when the
// main thread never released the GIL, and pay for a new thread state on
// every call. Here the runtime releases the GIL on construction, and each
// worker's GILGuard reuses one cached thread state for the thread's life.
//
// Usage: worker_callbacks [threads] [calls-per-thread]

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "pyscope/pyscope.h"

namespace {

// Calls handler(value) and returns the integer result.
long CallHandler(PyObject* handler, long value) PYSCOPE_REQUIRES_GIL {
  PyObject* result = PyObject_CallFunction(handler, "l", value);
  if (result == nullptr) throw pyscope::PythonError::FetchAndClear();
  const long out = PyLong_AsLong(result);
  Py_DECREF(result);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 4;
  const int calls = argc > 2 ? std::atoi(argv[2]) : 20000;

  pyscope::ScopedRuntime python;
  PyObject* handler = nullptr;
  {
    pyscope::GILGuard gil;
    pyscope::Exec(
        "import threading\n"
        "calls = 0\n"
        "lock = threading.Lock()\n"
        "def on_event(value):\n"
        "    global calls\n"
        "    with lock:\n"
        "        calls += 1\n"
        "    return value * 2\n");
    handler = pyscope::Eval("on_event");  // new reference, released below
  }

  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> pool;
  std::vector<long> sums(threads, 0);
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (int i = 0; i < calls; ++i) {
        pyscope::GILGuard gil;  // attach; the thread state is reused
        sums[t] += CallHandler(handler, i);
      }
    });
  }
  for (std::thread& worker : pool) worker.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();

  long python_calls = 0;
  {
    pyscope::GILGuard gil;
    PyObject* count = pyscope::Eval("calls");
    python_calls = PyLong_AsLong(count);
    Py_DECREF(count);
    Py_DECREF(handler);
  }
  const long expected = static_cast<long>(threads) * calls;
  long expected_sum = 0;
  for (int i = 0; i < calls; ++i) expected_sum += 2L * i;
  bool sums_ok = true;
  for (long sum : sums) sums_ok = sums_ok && sum == expected_sum;

  std::printf("threads: %d, calls per thread: %d\n", threads, calls);
  std::printf("Python counted %ld calls (expected %ld)%s\n", python_calls,
              expected, python_calls == expected ? "" : "  MISMATCH");
  std::printf("results per thread: %s\n", sums_ok ? "all correct" : "WRONG");
  std::printf("throughput: %.0f calls/s over %.3f s\n", expected / seconds,
              seconds);
  return python_calls == expected && sums_ok ? 0 : 1;
}
