// plugin_logging: a host that logs what its Python plugins print, one line
// at a time, prefixed with the plugin's name.
//
// Problem solved: plugins print, raise, warn and use `logging`; by default
// all of it lands on the host's stdout/stderr, interleaved and anonymous.
// Each plugin here runs in its own sub-interpreter, and an OutputCapture
// per interpreter sends its sys.stdout / sys.stderr to the host's logger,
// which assembles whole lines and prefixes them. Callbacks that run at the
// same time in one interpreter (the shared "scheduler" here) are kept apart
// with a ThreadOutputCapture per callback thread.

#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "pyscope/pyscope.h"

namespace {

// The host's logger: whole lines, one prefix per source, thread-safe.
class HostLog {
 public:
  pyscope::OutputSink SinkFor(std::string prefix) {
    auto partial =
        std::make_shared<std::map<pyscope::OutputStream, std::string>>();
    return [this, prefix, partial](pyscope::OutputStream stream,
                                   std::string_view text) {
      std::string& line = (*partial)[stream];
      for (char c : text) {
        if (c != '\n') {
          line += c;
          continue;
        }
        Write(prefix, stream, line);
        line.clear();
      }
    };
  }

 private:
  void Write(const std::string& prefix, pyscope::OutputStream stream,
             const std::string& line) {
    std::lock_guard<std::mutex> lock(mu_);
    std::printf("%-12s %s %s\n", prefix.c_str(),
                stream == pyscope::OutputStream::kStderr ? "!" : "|",
                line.c_str());
  }
  std::mutex mu_;
};

constexpr const char* kPlugins[][2] = {
    {"weather", "print('forecast: sunny')\nprint('wind', 3, 'm/s')"},
    {"billing", "import logging\nlogging.warning('invoice %d overdue', 17)"},
    {"broken", "raise ValueError('config missing')"},
};

}  // namespace

int main() {
  pyscope::ScopedRuntime python;
  HostLog log;
  for (const auto& source : kPlugins) {
    const char* name = source[0];
    const char* code = source[1];
    // An own GIL where this CPython has it (3.12+).
    const pyscope::SubInterpreterOptions options =
        pyscope::ValidateSubInterpreterOptions(
            pyscope::SubInterpreterOptions::Isolated())
                .ok()
            ? pyscope::SubInterpreterOptions::Isolated()
            : pyscope::SubInterpreterOptions::Legacy();
    pyscope::SubInterpreter plugin(options);
    pyscope::OutputCapture capture(pyscope::InterpreterView::Of(plugin),
                                   log.SinkFor(std::string("[") + name + "]"));
    plugin.Call([&]() PYSCOPE_REQUIRES_GIL {
      try {
        pyscope::Exec(code);
      } catch (const pyscope::PythonError& error) {
        // Into the plugin's own (captured) sys.stderr, as Python would.
        PySys_FormatStderr("%s", error.traceback().c_str());
      }
    });
  }

  // Two callbacks at once in the main interpreter: each thread's output
  // goes to its own prefix, however the writes interleave.
  std::vector<std::thread> callbacks;
  for (const char* job : {"backup", "indexer"}) {
    callbacks.emplace_back([&log, job] {
      pyscope::GILGuard gil;
      pyscope::ThreadOutputCapture mine(
          log.SinkFor(std::string("[") + job + "]"));
      pyscope::Exec(std::string("import time\nfor step in range(3):\n"
                                "  print('") +
                    job +
                    " step', step)\n"
                    "  time.sleep(0.01)");
    });
  }
  for (std::thread& thread : callbacks) thread.join();
  return 0;
}
