// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0

#include "bench_util.h"

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "pyscope/pyscope.h"

namespace pyscope_bench {
namespace {

struct SharedRuntime {
  std::unique_ptr<pyscope::ScopedRuntime> runtime;
  PyThreadState* main_tstate = nullptr;
  PyInterpreterState* main_interp = nullptr;
  PyObject* small = nullptr;
  std::vector<void (*)()> after_start;
  std::vector<void (*)()> after_stop;
};

SharedRuntime& Shared() {
  static SharedRuntime* shared = new SharedRuntime;
  return *shared;
}

}  // namespace

void EnsureRuntime() {
  SharedRuntime& shared = Shared();
  if (shared.runtime != nullptr) return;
  shared.runtime = std::make_unique<pyscope::ScopedRuntime>();
  {
    pyscope::GILGuard gil;
    shared.main_tstate = PyThreadState_Get();
    shared.main_interp = PyThreadState_GetInterpreter(shared.main_tstate);
    PyObject* globals = PyModule_GetDict(PyImport_AddModule("__main__"));
    PyObject* result = PyRun_String("def small():\n    return 1\n",
                                    Py_file_input, globals, globals);
    if (result == nullptr) {
      PyErr_Print();
      std::abort();
    }
    Py_DECREF(result);
    shared.small = PyDict_GetItemString(globals, "small");
    Py_INCREF(shared.small);
  }
  for (void (*hook)() : shared.after_start) hook();
}

void StopRuntime() {
  SharedRuntime& shared = Shared();
  if (shared.runtime == nullptr) return;
  {
    pyscope::GILGuard gil;
    Py_CLEAR(shared.small);
  }
  absl::Status status = shared.runtime->Finalize();
  if (!status.ok()) {
    std::fprintf(stderr, "bench: finalizing the shared runtime: %s\n",
                 status.ToString().c_str());
  }
  shared.runtime.reset();
  shared.main_tstate = nullptr;
  shared.main_interp = nullptr;
  for (void (*hook)() : shared.after_stop) hook();
}

void AddAfterStartHook(void (*hook)()) { Shared().after_start.push_back(hook); }

void AddAfterStopHook(void (*hook)()) { Shared().after_stop.push_back(hook); }

PyThreadState* MainThreadState() { return Shared().main_tstate; }

PyInterpreterState* MainInterpreter() { return Shared().main_interp; }

void CallSmall() {
  PyObject* result = PyObject_CallNoArgs(Shared().small);
  if (result == nullptr) {
    PyErr_Print();
    std::abort();
  }
  Py_DECREF(result);
}

void DetachAfterEndInterpreter(PyThreadState* main_tstate) {
  if (pyscope::detail::compat::kSwapSwitchesGil) {
    PyEval_RestoreThread(main_tstate);
  } else {
    PyThreadState_Swap(main_tstate);
  }
  PyEval_SaveThread();
}

PyThreadState* NewInterpreterWithOwnGil() {
  if (!pyscope::detail::compat::kHasPerInterpreterGil) return nullptr;
  pyscope::detail::compat::InterpreterSettings settings;
  settings.use_main_obmalloc = false;
  settings.allow_fork = false;
  settings.allow_exec = false;
  settings.allow_daemon_threads = false;
  settings.check_multi_interp_extensions = true;
  settings.own_gil = true;
  PyThreadState* tstate = nullptr;
  PyStatus status = pyscope::detail::compat::NewInterpreter(settings, &tstate);
  if (PyStatus_Exception(status)) return nullptr;
  return tstate;
}

WorkerPool::WorkerPool(int threads) {
  threads_.reserve(threads);
  for (int i = 0; i < threads; ++i) {
    threads_.emplace_back([this, i] { Loop(i); });
  }
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  start_.notify_all();
  for (std::thread& thread : threads_) thread.join();
}

double WorkerPool::Run(const std::function<void(int)>& task) {
  const auto begin = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> lock(mu_);
  task_ = &task;
  pending_ = size();
  ++round_;
  start_.notify_all();
  done_.wait(lock, [this] { return pending_ == 0; });
  task_ = nullptr;
  return SecondsSince(begin);
}

void WorkerPool::Loop(int index) {
  uint64_t seen = 0;
  for (;;) {
    const std::function<void(int)>* task;
    {
      std::unique_lock<std::mutex> lock(mu_);
      start_.wait(lock, [&] { return stop_ || round_ != seen; });
      if (stop_) return;
      seen = round_;
      task = task_;
    }
    (*task)(index);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (--pending_ == 0) done_.notify_one();
    }
  }
}

}  // namespace pyscope_bench
