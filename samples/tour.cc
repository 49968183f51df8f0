// tour: one of each pyscope guard, printing what happens.
//
// Problem solved: the C API pairings of the "Initialization, Finalization,
// and Threads" chapter (initialize/finalize, Ensure/Release,
// SaveThread/RestoreThread, Swap/Swap-back) written as C++ scopes, so no
// error path can leave one half out.

#include <chrono>
#include <cstdio>
#include <thread>

#include "pyscope/pyscope.h"

// Functions that touch Python say so; clang -Wthread-safety then rejects
// calls made without a GILGuard in scope.
static long Counter() PYSCOPE_REQUIRES_GIL {
  PyObject* value = pyscope::Eval("counter");
  long result = PyLong_AsLong(value);
  Py_DECREF(value);
  return result;
}

// A helper that does not know whether its caller holds the GIL: its guard
// is nested (a counter increment) when the caller does.
static void Increment() {
  pyscope::GILGuard gil;
  pyscope::Exec("counter += 1");
}

int main() {
  // 1. The runtime: isolated from the environment, GIL released on return.
  pyscope::ScopedRuntime python;
  std::printf("runtime: initialized CPython %s (isolated)\n", Py_GetVersion());

  {
    // 2. GILGuard: this thread attaches and holds the GIL for the scope.
    pyscope::GILGuard gil;
    pyscope::Exec("counter = 0\nimport threading");
    PyObject* ident = pyscope::Eval("threading.get_ident()");
    std::printf("GILGuard: attached; Python sees this thread as %lu\n",
                PyLong_AsUnsignedLong(ident));
    Py_DECREF(ident);
    Increment();  // takes its own GILGuard: reentrant, a counter increment
    std::printf("GILGuard: nested guard ran, counter = %ld\n", Counter());

    // 3. AllowThreads: release the GIL while a native thread uses Python.
    {
      pyscope::AllowThreads nogil;
      std::thread worker([] {
        pyscope::GILGuard worker_gil;  // a native thread, attached once
        pyscope::Exec("counter += 10");
      });
      worker.join();
      {
        pyscope::GILGuard again;  // take the GIL back inside (Py_BLOCK_THREADS)
        pyscope::Exec("counter += 100");
      }
    }
    std::printf(
        "AllowThreads: worker thread ran while released, counter = %ld\n",
        Counter());

    // 4. ThreadStateSwap: run with a thread state you manage yourself.
    PyThreadState* mine = PyThreadState_New(PyInterpreterState_Main());
    {
      pyscope::ThreadStateSwap swap(mine);
      pyscope::Exec("counter += 1000");
      std::printf("ThreadStateSwap: ran on a hand-made thread state %p\n",
                  static_cast<void*>(mine));
    }
    PyThreadState_Clear(mine);
    PyThreadState_Delete(mine);
    std::printf("ThreadStateSwap: previous state restored, counter = %ld\n",
                Counter());

    // 5. Errors: a Python exception becomes pyscope::PythonError.
    try {
      pyscope::Exec("raise ValueError('expected for the tour')");
    } catch (const pyscope::PythonError& error) {
      std::printf("PythonError: %s: %s\n", error.type_name().c_str(),
                  error.message().c_str());
    }
  }

  python.AddExitCallback([] {
    pyscope::GILGuard gil;
    std::printf("exit callback: Python still works, counter = %ld\n",
                Counter());
  });
  absl::Status status = python.Finalize();
  std::printf("runtime: finalized: %s\n", status.ToString().c_str());
  return status.ok() ? 0 : 1;
}
