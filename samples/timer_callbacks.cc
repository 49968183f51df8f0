// timer_callbacks: a C++ timer library calling back into whichever
// interpreter registered the callback — also after that interpreter ended.
//
// Problem solved: a callback that stores a PyInterpreterState* or a
// PyThreadState* crashes when it fires after its interpreter ended (or
// after the runtime was finalized). An InterpreterView is a weak handle:
// the timer keeps it, and attaching through it either gives the
// interpreter's GIL or says, as a status, why not (PEP 788's
// PyInterpreterView, on CPython 3.9-3.13).

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "pyscope/pyscope.h"

namespace {

// A minimal timer library: runs callbacks on its own thread, in order.
class Timers {
 public:
  Timers() : thread_([this] { Run(); }) {}
  ~Timers() { Stop(); }
  void After(std::chrono::milliseconds delay, std::function<void()> callback) {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(
        {std::chrono::steady_clock::now() + delay, std::move(callback)});
  }
  void Start() {
    thread_ = std::thread([this] { Run(); });
  }
  void Stop() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    thread_.join();
  }

 private:
  struct Entry {
    std::chrono::steady_clock::time_point when;
    std::function<void()> callback;
  };
  void Run() {
    for (;;) {
      std::unique_lock<std::mutex> lock(mu_);
      if (queue_.empty()) {
        if (stop_) return;
        lock.unlock();
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        continue;
      }
      Entry next = std::move(queue_.front());
      queue_.erase(queue_.begin());
      lock.unlock();
      std::this_thread::sleep_until(next.when);
      next.callback();
    }
  }
  std::mutex mu_;
  std::vector<Entry> queue_;
  bool stop_ = false;
  std::thread thread_;  // last: starts once the rest exists
};

// What a plugin registers: a view of its interpreter, not a raw pointer.
std::function<void()> CallBackInto(pyscope::InterpreterView view,
                                   std::string name) {
  return [view, name] {
    pyscope::GILGuard gil(view, std::nothrow);
    if (!gil.ok()) {
      std::printf("%-8s skipped: %s\n", name.c_str(),
                  std::string(gil.status().message()).c_str());
      return;
    }
    pyscope::Exec("ticks += 1\nprint('" + name + " tick', ticks, flush=True)");
  };
}

}  // namespace

int main() {
  pyscope::ScopedRuntime python;
  {
    pyscope::GILGuard gil;
    pyscope::Exec("ticks = 0");
  }
  auto short_lived = std::make_unique<pyscope::SubInterpreter>();
  pyscope::SubInterpreter long_lived;
  short_lived->Exec("ticks = 100");
  long_lived.Exec("ticks = 200");

  Timers timers;
  using std::chrono::milliseconds;
  timers.After(milliseconds(5),
               CallBackInto(pyscope::MainInterpreter(), "main"));
  timers.After(
      milliseconds(5),
      CallBackInto(pyscope::InterpreterView::Of(*short_lived), "short"));
  timers.After(milliseconds(5),
               CallBackInto(pyscope::InterpreterView::Of(long_lived), "long"));
  // These fire after `short_lived` has ended: a status, not a crash.
  timers.After(
      milliseconds(50),
      CallBackInto(pyscope::InterpreterView::Of(*short_lived), "short"));
  timers.After(milliseconds(5),
               CallBackInto(pyscope::InterpreterView::Of(long_lived), "long"));
  std::this_thread::sleep_for(milliseconds(20));
  short_lived.reset();  // ends the interpreter; its timers stay queued
  timers.Stop();        // runs what is left, then joins
  return 0;
}
