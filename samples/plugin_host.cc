// plugin_host: each plugin script in an interpreter of its own.
//
// Problem solved: plugins loaded into one interpreter share sys.modules,
// globals and monkey-patches, and one that raises or calls sys.exit() can
// take the host down with it. Here every plugin gets its own sub-interpreter
// (SubInterpreterOptions::Isolated(), with its own GIL, on CPython 3.12+;
// Legacy() before, which still has its own sys.modules and __main__). A
// plugin that fails is reported and ended; the others keep working.

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "pyscope/pyscope.h"

namespace {

struct Plugin {
  const char* name;
  const char* source;
};

// Three plugins: one that works, one that raises, one that calls sys.exit().
constexpr Plugin kPlugins[] = {
    {"greeter", R"py(
import sys
sys.modules['host_api'] = 'patched by greeter'  # visible to greeter only
def handle(event):
    return 'greeter saw %r (sys.modules has %d entries here)' % (
        event, len(sys.modules))
)py"},
    {"crasher", R"py(
def handle(event):
    return 'unreachable'
raise RuntimeError('crasher could not find its configuration')
)py"},
    {"quitter", R"py(
import sys
sys.exit(3)
)py"},
};

std::string FirstLine(const absl::Status& status) {
  const std::string message(status.message());
  return message.substr(0, message.find('\n'));
}

// Calls handle('startup') in the interpreter the thread is attached to.
std::string Startup() PYSCOPE_REQUIRES_GIL {
  PyObject* result = pyscope::Eval("str(handle('startup'))");
  std::string text = PyUnicode_AsUTF8(result);
  Py_DECREF(result);
  return text;
}

}  // namespace

int main() {
  pyscope::ScopedRuntime python;
  pyscope::SubInterpreterOptions options =
      pyscope::SubInterpreterOptions::Isolated();
  if (!pyscope::ValidateSubInterpreterOptions(options).ok()) {
    options = pyscope::SubInterpreterOptions::Legacy();  // before 3.12
  }

  struct Loaded {
    const char* name;
    std::unique_ptr<pyscope::SubInterpreter> interpreter;
  };
  std::vector<Loaded> loaded;
  int failed = 0;
  for (const Plugin& plugin : kPlugins) {
    auto interpreter = std::make_unique<pyscope::SubInterpreter>(options);
    // A raise or sys.exit() in the plugin comes back as a status.
    const absl::Status status = interpreter->TryExec(plugin.source);
    if (status.ok()) {
      std::printf("loaded %s in interpreter %lld\n", plugin.name,
                  static_cast<long long>(interpreter->id()));
      loaded.push_back({plugin.name, std::move(interpreter)});
      continue;
    }
    ++failed;
    const absl::Status ended = interpreter->End();
    std::printf("plugin %s failed: %s; its interpreter ended: %s\n",
                plugin.name, FirstLine(status).c_str(),
                ended.ToString().c_str());
  }

  // The failures did not disturb the others, nor the main interpreter.
  for (Loaded& plugin : loaded) {
    std::printf("%s -> %s\n", plugin.name,
                plugin.interpreter
                    ->Call([]() PYSCOPE_REQUIRES_GIL { return Startup(); })
                    .c_str());
  }
  {
    pyscope::GILGuard gil;
    PyObject* patched =
        pyscope::Eval("'host_api' in __import__('sys').modules");
    std::printf("main interpreter sees host_api: %s\n",
                patched == Py_True ? "yes" : "no");
    Py_DECREF(patched);
  }

  std::printf("%zu plugin(s) ran, %d failed and were ended\n", loaded.size(),
              failed);
  loaded.clear();  // ~SubInterpreter ends each one
  return python.Finalize().ok() && failed == 2 ? 0 : 1;
}
