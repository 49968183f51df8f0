// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Interrupts: KeyboardInterrupt for the main thread through a simulated
// signal, and for one scope on any thread through PyThreadState_SetAsyncExc.

#include "pyscope/interrupt.h"

#include <pthread.h>
#include <semaphore.h>
#include <signal.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "attach.h"
#include "gate.h"
#include "interrupt_setup.h"
#include "pyscope/error.h"
#include "pyscope/gil.h"
#include "pyscope/interpreter_view.h"
#include "thread_state_cache.h"

namespace pyscope {
namespace detail {
namespace {

std::atomic<int> interrupt_signal{0};
std::atomic<void (*)(int)> cpython_handler{nullptr};
// CPython's main thread (the initializing one), where signals are handled.
std::atomic<pthread_t> main_thread{};

// Wakes the main thread's eval loop for a signal simulated on another
// thread. CPython 3.12 and 3.13 mark signals pending for the eval loop only
// when the simulating thread is the main one (_PyEval_SignalReceived tests
// _Py_ThreadCanHandleSignals for the calling thread; 3.14 signals the main
// thread state), and a pending call is flagged the same way: a busy loop
// on the main thread would never look. It looks when it hands the GIL over
// and takes it back, so the waker asks for the GIL once per interrupt.
// sem_post is async-signal-safe; the thread starts at the first interrupt
// from a thread other than the main one.
struct Waker {
  sem_t requests;
  std::atomic<int> state{0};  // 0: no thread, 1: starting/running
  std::atomic<bool> stop{false};
  std::thread thread;
};
Waker& GetWaker() {
  static Waker* const waker = [] {
    auto* made = new Waker;
    sem_init(&made->requests, 0, 0);
    return made;
  }();
  return *waker;
}

void RunWaker() {
  Waker& waker = GetWaker();
  for (;;) {
    if (sem_wait(&waker.requests) != 0) continue;  // EINTR
    if (waker.stop.load(std::memory_order_acquire)) return;
    // Refused once the runtime is finalizing: nothing to wake then.
    GILGuard gil(std::nothrow);
  }
}

void WakeMainThread() {
  Waker& waker = GetWaker();
  int expected = 0;
  if (waker.state.compare_exchange_strong(expected, 1)) {
    waker.stop.store(false, std::memory_order_release);
    waker.thread = std::thread(&RunWaker);
  }
  sem_post(&waker.requests);
}

void StopWaker() {
  Waker& waker = GetWaker();
  if (waker.state.load() == 0) return;
  waker.stop.store(true, std::memory_order_release);
  sem_post(&waker.requests);
  if (waker.thread.joinable()) waker.thread.join();
  while (sem_trywait(&waker.requests) == 0) {
  }
  waker.state.store(0);
}

// The Python-level handler of the interrupt signal: what a real Ctrl-C
// would do — Python code's own SIGINT handler if it installed one, else
// KeyboardInterrupt.
PyObject* OnInterruptSignal(PyObject*, PyObject* args) PYSCOPE_REQUIRES_GIL {
  PyObject* frame = PyTuple_Size(args) > 1 ? PyTuple_GetItem(args, 1) : Py_None;
  PyObject* signal_module = PyImport_ImportModule("signal");
  if (signal_module == nullptr) return nullptr;
  PyObject* handler =
      PyObject_CallMethod(signal_module, "getsignal", "i", SIGINT);
  Py_DECREF(signal_module);
  if (handler == nullptr) return nullptr;
  if (PyCallable_Check(handler)) {
    PyObject* result = PyObject_CallFunction(handler, "iO", SIGINT, frame);
    Py_DECREF(handler);
    return result;
  }
  Py_DECREF(handler);
  PyErr_SetNone(PyExc_KeyboardInterrupt);
  return nullptr;
}

PyMethodDef kInterruptHandler = {
    "_pyscope_interrupt", &OnInterruptSignal, METH_VARARGS,
    "pyscope.InterruptMainThread(): raises KeyboardInterrupt, or calls the "
    "SIGINT handler Python code installed"};

bool IsFree(int signum) {
  struct sigaction action;
  return sigaction(signum, nullptr, &action) == 0 &&
         (action.sa_flags & SA_SIGINFO) == 0 && action.sa_handler == SIG_DFL;
}

}  // namespace

absl::Status PrepareInterruptSignal() {
  ForgetInterruptSignal();
  // The highest real-time signal nobody handles (glibc keeps the lowest
  // ones for itself; applications usually count up from SIGRTMIN).
  int signum = 0;
  for (int candidate = SIGRTMAX; candidate > SIGRTMIN + 2; --candidate) {
    if (IsFree(candidate)) {
      signum = candidate;
      break;
    }
  }
  if (signum == 0) return absl::OkStatus();
  struct sigaction before;
  sigaction(signum, nullptr, &before);
  PyObject* handler = PyCFunction_New(&kInterruptHandler, nullptr);
  // _signal, not signal: the Python module imports enum, millions of
  // instructions at every start for nothing this needs.
  PyObject* module =
      handler == nullptr ? nullptr : PyImport_ImportModule("_signal");
  PyObject* result =
      module == nullptr
          ? nullptr
          : PyObject_CallMethod(module, "signal", "iO", signum, handler);
  Py_XDECREF(module);
  Py_XDECREF(handler);
  if (result == nullptr) return PythonError::FetchAndClear().status();
  Py_DECREF(result);
  struct sigaction installed;
  sigaction(signum, nullptr, &installed);
  // The disposition goes back to the default: only InterruptMainThread
  // ever "delivers" this signal, to Python's handler table.
  sigaction(signum, &before, nullptr);
  cpython_handler.store(installed.sa_handler, std::memory_order_relaxed);
  main_thread.store(pthread_self(), std::memory_order_relaxed);
  interrupt_signal.store(signum, std::memory_order_release);
  return absl::OkStatus();
}

void ForgetInterruptSignal() {
  interrupt_signal.store(0, std::memory_order_release);
  cpython_handler.store(nullptr, std::memory_order_relaxed);
  StopWaker();
}

struct InterruptSlot {
  std::mutex mu;
  bool active = false;
  uint64_t serial = 0;
  unsigned long thread_id = 0;
  InterpreterView view;
};

}  // namespace detail

bool InterruptMainThread() noexcept {
  if (detail::Gate::Get().state() != detail::Gate::State::kRunning) {
    return false;
  }
  const int signum = detail::interrupt_signal.load(std::memory_order_acquire);
  if (signum == 0) return false;
  if (detail::compat::SimulateSignal(
          signum, detail::cpython_handler.load(std::memory_order_relaxed)) !=
      0) {
    return false;
  }
  if (!pthread_equal(pthread_self(),
                     detail::main_thread.load(std::memory_order_relaxed))) {
    detail::WakeMainThread();
  }
  return true;
}

int InterruptSignal() noexcept {
  return detail::interrupt_signal.load(std::memory_order_acquire);
}

InterruptToken::InterruptToken()
    : slot_(std::make_shared<detail::InterruptSlot>()) {}

bool InterruptToken::active() const {
  std::lock_guard<std::mutex> lock(slot_->mu);
  return slot_->active;
}

// Takes the GIL of the scope's interpreter by itself.
absl::Status InterruptToken::Interrupt() const ABSL_NO_THREAD_SAFETY_ANALYSIS {
  InterpreterView view;
  uint64_t serial = 0;
  {
    std::lock_guard<std::mutex> lock(slot_->mu);
    if (!slot_->active) {
      return absl::FailedPreconditionError(
          "pyscope: InterruptToken::Interrupt: no InterruptScope is active "
          "for this token");
    }
    view = slot_->view;
    serial = slot_->serial;
  }
  GILGuard gil(view, std::nothrow);
  if (!gil.ok()) return gil.status();
  // GIL, then the slot's lock: the scope's destructor holds the same GIL
  // when it takes the lock, so it cannot end in between.
  std::lock_guard<std::mutex> lock(slot_->mu);
  if (!slot_->active || slot_->serial != serial) {
    return absl::FailedPreconditionError(
        "pyscope: InterruptToken::Interrupt: the InterruptScope ended before "
        "the interrupt could be delivered");
  }
  if (PyThreadState_SetAsyncExc(slot_->thread_id, PyExc_KeyboardInterrupt) !=
      1) {
    return absl::InternalError(
        "pyscope: PyThreadState_SetAsyncExc did not find the scope's thread");
  }
  return absl::OkStatus();
}

InterruptScope::InterruptScope(const InterruptToken& token)
    : slot_(token.slot_) {
  PyThreadState* tstate = detail::AttachedHere(detail::ThisRecord());
  if (tstate == nullptr) {
    status_ = absl::FailedPreconditionError(
        "pyscope: InterruptScope needs the GIL (create it inside a GILGuard "
        "scope)");
    return;
  }
  absl::StatusOr<InterpreterView> view = InterpreterView::FromCurrent();
  if (!view.ok()) {
    status_ = view.status();
    return;
  }
  std::lock_guard<std::mutex> lock(slot_->mu);
  if (slot_->active) {
    status_ = absl::AlreadyExistsError(
        "pyscope: an InterruptScope is already active for this token");
    return;
  }
  slot_->active = true;
  serial_ = ++slot_->serial;
  slot_->thread_id = tstate->thread_id;
  slot_->view = *std::move(view);
}

// Touches Python only when the thread still holds the GIL.
InterruptScope::~InterruptScope() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (!status_.ok()) return;
  unsigned long thread_id = 0;
  {
    std::lock_guard<std::mutex> lock(slot_->mu);
    slot_->active = false;
    ++slot_->serial;
    thread_id = slot_->thread_id;
  }
  // Cancel an interrupt that arrived but has not been raised yet.
  if (detail::AttachedHere(detail::ThisRecord()) != nullptr) {
    PyThreadState_SetAsyncExc(thread_id, nullptr);
  }
}

}  // namespace pyscope
