// blocking_io: release the GIL around blocking native work.
//
// Problem solved: a C++ function called with the GIL held that blocks (a
// socket read, a disk write, a long computation) freezes every Python
// thread for the whole time. Py_BEGIN/END_ALLOW_THREADS fixes that, but a
// forgotten END on an early return or an exception corrupts the
// interpreter. AllowThreads is the same pair as a scope.
//
// On the free-threaded build (3.14t) there is no GIL, but a thread that
// blocks while attached still freezes every thread that needs a
// stop-the-world pause, such as the garbage collector: the ticker below
// collects garbage on each tick, so it stalls the same way there.

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <thread>

#include "pyscope/pyscope.h"

namespace {

long Ticks() PYSCOPE_REQUIRES_GIL {
  PyObject* value = pyscope::Eval("ticks");
  const long ticks = PyLong_AsLong(value);
  Py_DECREF(value);
  return ticks;
}

// Stands for a blocking read that may fail; throws after the wait when
// `fail` is set, leaving the scope through an exception.
void BlockingRead(std::chrono::milliseconds wait, bool fail) {
  std::this_thread::sleep_for(wait);
  if (fail) throw std::runtime_error("device went away");
}

// Blocks for `wait`; returns how many ticks the Python thread made meanwhile.
long ReadWithGilReleased(std::chrono::milliseconds wait,
                         bool fail) PYSCOPE_REQUIRES_GIL {
  const long before = Ticks();
  try {
    pyscope::AllowThreads nogil;  // Python threads run while we block
    BlockingRead(wait, fail);
  } catch (const std::exception& e) {
    // The GIL is held again here, whichever way the scope was left.
    std::printf("  blocking read failed (%s); GIL re-acquired\n", e.what());
  }
  return Ticks() - before;
}

long ReadWithGilHeld(std::chrono::milliseconds wait) PYSCOPE_REQUIRES_GIL {
  const long before = Ticks();
  BlockingRead(wait, false);  // every Python thread is frozen meanwhile
  return Ticks() - before;
}

}  // namespace

int main() {
  pyscope::ScopedRuntime python;
  pyscope::GILGuard gil;
  // A Python thread that ticks every millisecond.
  pyscope::Exec(
      "import gc, threading, time\n"
      "ticks = 0\n"
      "stop = False\n"
      "def ticker():\n"
      "    global ticks\n"
      "    while not stop:\n"
      "        ticks += 1\n"
      "        gc.collect(0)\n"
      "        time.sleep(0.001)\n"
      "worker = threading.Thread(target=ticker)\n"
      "worker.start()\n");

  const auto wait = std::chrono::milliseconds(300);
  const long held = ReadWithGilHeld(wait);
  const long released = ReadWithGilReleased(wait, /*fail=*/false);
  const long released_error = ReadWithGilReleased(wait, /*fail=*/true);
  std::printf("Python ticks during a 300 ms blocking call:\n");
  std::printf("  GIL held:                      %ld\n", held);
  std::printf("  GIL released (AllowThreads):   %ld\n", released);
  std::printf("  released, call threw:          %ld\n", released_error);

  {
    pyscope::AllowThreads nogil;  // let the ticker see `stop` and finish
    pyscope::GILGuard again;
    pyscope::Exec("stop = True");
  }
  {
    pyscope::AllowThreads nogil;
    pyscope::GILGuard again;
    pyscope::Exec("worker.join()");
  }
  // The ticker keeps running while the GIL is released: expect many ticks
  // there, and almost none while it is held.
  const bool ok = released > 10 * (held + 1) / 2 && released_error > 10;
  std::printf("%s\n", ok ? "Python kept running while the GIL was released"
                         : "UNEXPECTED: Python did not make progress");
  return ok ? 0 : 1;
}
