// main_thread_calls: worker threads marshal work onto the main thread.
//
// Problem solved: some host APIs may only be called from the main thread
// (UI toolkits, Maya's executeDeferred-style scripting hosts). Workers hand
// such work to the main thread; with the C API that is Py_AddPendingCall
// with a function pointer and a void* whose lifetime is yours, no result,
// errors that vanish, and calls leaked when Python finalizes first.
// CallOnMainThread takes an owned closure and returns a future.

#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <future>
#include <thread>
#include <vector>

#include "pyscope/pyscope.h"

namespace {

long ThreadId() { return static_cast<long>(syscall(SYS_gettid)); }

// Stands for an API that must run on the main thread.
long MainThreadOnlyApi(long main_id, int job) PYSCOPE_REQUIRES_GIL {
  if (ThreadId() != main_id) return -1;
  PyObject* value = pyscope::Eval("registry.append(" + std::to_string(job) +
                                  ") or len(registry)");
  const long size = PyLong_AsLong(value);
  Py_DECREF(value);
  return size;
}

// The main thread's own loop: runs Python (here: waits in Python) until
// every job arrived, so that CPython runs the pending calls between
// bytecodes. A host with its own event loop calls RunPendingCalls().
void MainLoop(int jobs) {
  pyscope::GILGuard gil;
  pyscope::Exec(
      "import time\n"
      "while len(registry) < " +
      std::to_string(jobs) +
      ":\n"
      "    time.sleep(0.001)\n");
}

void Setup() {
  pyscope::GILGuard gil;
  pyscope::Exec("registry = []");
}

}  // namespace

int main() {
  pyscope::ScopedRuntime python;
  Setup();
  const long main_id = ThreadId();
  constexpr int kWorkers = 4;
  constexpr int kJobsEach = 3;
  std::vector<long> answers(kWorkers * kJobsEach, 0);
  std::vector<std::thread> workers;
  for (int w = 0; w < kWorkers; ++w) {
    workers.emplace_back([&, w] {
      for (int i = 0; i < kJobsEach; ++i) {
        const int job = w * kJobsEach + i;
        auto answer =
            pyscope::CallOnMainThread([main_id, job]() PYSCOPE_REQUIRES_GIL {
              return MainThreadOnlyApi(main_id, job);
            });
        if (!answer.ok()) {
          std::printf("job %d not posted: %s\n", job,
                      answer.status().ToString().c_str());
          continue;
        }
        answers[job] = answer->get();  // waits until the main thread ran it
      }
    });
  }
  MainLoop(kWorkers * kJobsEach);
  for (std::thread& worker : workers) worker.join();
  bool all_on_main = true;
  for (long answer : answers) all_on_main = all_on_main && answer > 0;
  const pyscope::MainThreadCallStats stats = pyscope::GetMainThreadCallStats();
  std::printf("%d jobs ran on the main thread: %s (posted %llu, ran %llu)\n",
              kWorkers * kJobsEach, all_on_main ? "yes" : "no",
              static_cast<unsigned long long>(stats.posted),
              static_cast<unsigned long long>(stats.ran));
  return all_on_main && stats.ran == stats.posted ? 0 : 1;
}
