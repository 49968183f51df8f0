// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0

#include "host_setup.h"

#include <array>
#include <clocale>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "lock.h"

namespace pyscope {

BuiltinModule BuiltinModule::FromInit(std::string name, PyObject* (*init)()) {
  BuiltinModule module;
  module.name = std::move(name);
  module.init = init;
  return module;
}

BuiltinModule BuiltinModule::FromDefinition(std::string name,
                                            PyModuleDef* definition) {
  BuiltinModule module;
  module.name = std::move(name);
  module.definition = definition;
  return module;
}

namespace detail {
namespace {

// --- Built-in modules ---

// CPython's own table, as it was when the library was loaded (before any
// PyImport_AppendInittab of the process's code ran, normally): what
// PyImport_Inittab must point to again after a finalization freed the
// extended copy (compat::kFinalizeResetsInittab).
struct _inittab* const pristine_inittab = PyImport_Inittab;

// Module definitions get an init function each from this table: inittab
// entries are plain function pointers without a context argument.
constexpr int kDefinitionSlots = 32;
PyModuleDef* definition_slots[kDefinitionSlots] = {};

// Called by CPython's import machinery, with the GIL held.
template <int kSlot>
PyObject* InitFromDefinition() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  PyModuleDef* definition = definition_slots[kSlot];
  if (definition->m_slots != nullptr) return PyModuleDef_Init(definition);
  return PyModule_Create(definition);
}

template <int... kSlots>
constexpr auto MakeInitTable(std::integer_sequence<int, kSlots...>) {
  using Init = PyObject* (*)();
  return std::array<Init, sizeof...(kSlots)>{&InitFromDefinition<kSlots>...};
}
constexpr auto kInitTable =
    MakeInitTable(std::make_integer_sequence<int, kDefinitionSlots>());

// What pyscope registered, for the process's lifetime: CPython keeps the
// name pointers of inittab entries.
struct Registrations {
  CoreMutex mu;
  std::vector<std::unique_ptr<std::string>> names ABSL_GUARDED_BY(mu);
  bool extended ABSL_GUARDED_BY(mu) = false;
  // Audit hooks of the running runtime (CPython holds their addresses).
  std::vector<std::unique_ptr<AuditHook>> audit_hooks ABSL_GUARDED_BY(mu);
};
Registrations& GetRegistrations() {
  static Registrations* const registrations = new Registrations;
  return *registrations;
}

bool IsModuleName(const std::string& name) {
  if (name.empty() || name.front() == '.' || name.back() == '.') return false;
  char previous = '.';
  for (char c : name) {
    if (c == '.') {
      if (previous == '.') return false;
    } else if (!(absl::ascii_isalnum(c) || c == '_') ||
               (previous == '.' && absl::ascii_isdigit(c))) {
      return false;
    }
    previous = c;
  }
  return true;
}

// The inittab entry named `name`, or null.
const struct _inittab* FindInittab(const std::string& name) {
  for (const struct _inittab* entry = PyImport_Inittab; entry->name != nullptr;
       ++entry) {
    if (name == entry->name) return entry;
  }
  return nullptr;
}

// The init function for `module`, giving a definition a slot (the same one
// at every initialization).
absl::StatusOr<PyObject* (*)()> InitFunctionFor(const BuiltinModule& module) {
  if (module.init != nullptr) return module.init;
  for (int slot = 0; slot < kDefinitionSlots; ++slot) {
    if (definition_slots[slot] == module.definition ||
        definition_slots[slot] == nullptr) {
      definition_slots[slot] = module.definition;
      return kInitTable[slot];
    }
  }
  return absl::ResourceExhaustedError(
      absl::StrCat("pyscope: more than ", kDefinitionSlots,
                   " built-in module definitions; register the others with "
                   "an init function (BuiltinModule::FromInit)"));
}

absl::Status CheckBuiltinModules(const RuntimeOptions& options, bool adopt) {
  if (adopt && !options.builtin_modules.empty()) {
    return absl::FailedPreconditionError(
        "pyscope: RuntimeOptions::builtin_modules cannot be registered with "
        "Adopt(): the host's interpreter has already started (CPython reads "
        "the built-in table at initialization)");
  }
  std::set<std::string> seen;
  for (const BuiltinModule& module : options.builtin_modules) {
    if (!IsModuleName(module.name)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "pyscope: built-in module name \"", module.name,
          "\" is not a module name (identifiers separated by dots)"));
    }
    if ((module.init == nullptr) == (module.definition == nullptr)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "pyscope: built-in module \"", module.name,
          "\" needs exactly one of an init function or a module definition"));
    }
    if (!seen.insert(module.name).second) {
      return absl::AlreadyExistsError(absl::StrCat(
          "pyscope: built-in module \"", module.name,
          "\" is listed twice in RuntimeOptions::builtin_modules"));
    }
    if (FindInittab(module.name) != nullptr) {
      return absl::AlreadyExistsError(absl::StrCat(
          "pyscope: CPython already has a built-in module named \"",
          module.name, "\"; choose another name"));
    }
  }
  return absl::OkStatus();
}

// Puts CPython's own built-in table back if an earlier finalization left
// PyImport_Inittab pointing at the freed extended copy.
void RepairInittab() {
  Registrations& registrations = GetRegistrations();
  CoreLock lock(&registrations.mu);
  if (!compat::kFinalizeResetsInittab && registrations.extended) {
    PyImport_Inittab = pristine_inittab;
  }
  registrations.extended = false;
}

absl::Status RegisterBuiltinModules(const RuntimeOptions& options) {
  Registrations& registrations = GetRegistrations();
  for (const BuiltinModule& module : options.builtin_modules) {
    if (FindInittab(module.name) != nullptr) {
      return absl::AlreadyExistsError(absl::StrCat(
          "pyscope: CPython already has a built-in module named \"",
          module.name, "\"; choose another name"));
    }
    absl::StatusOr<PyObject* (*)()> init = InitFunctionFor(module);
    if (!init.ok()) return init.status();
    CoreLock lock(&registrations.mu);
    const std::string* name = nullptr;
    for (const auto& kept : registrations.names) {
      if (*kept == module.name) name = kept.get();
    }
    if (name == nullptr) {
      registrations.names.push_back(std::make_unique<std::string>(module.name));
      name = registrations.names.back().get();
    }
    if (PyImport_AppendInittab(name->c_str(), *init) != 0) {
      return absl::ResourceExhaustedError(
          "pyscope: PyImport_AppendInittab failed (out of memory)");
    }
    registrations.extended = true;
  }
  return absl::OkStatus();
}

// --- Audit hooks ---

// Called by CPython with the GIL held once a thread state exists.
int CallAuditHook(const char* event, PyObject* args,
                  void* data) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  // Events raised before the first thread state exists cannot be refused
  // (there is nowhere to raise the exception).
  if (compat::CurrentThreadStateUnchecked() == nullptr) return 0;
  absl::Status status;
  try {
    status = (*static_cast<AuditHook*>(data))(event, args);
  } catch (const std::exception& e) {
    status = absl::InternalError(
        absl::StrCat("pyscope: an audit hook threw: ", e.what()));
  } catch (...) {
    status = absl::InternalError("pyscope: an audit hook threw");
  }
  if (status.ok()) return 0;
  PyErr_SetString(status.code() == absl::StatusCode::kPermissionDenied
                      ? PyExc_PermissionError
                      : PyExc_RuntimeError,
                  std::string(status.message()).c_str());
  return -1;
}

absl::Status InstallAuditHooks(const RuntimeOptions& options) {
  Registrations& registrations = GetRegistrations();
  for (const AuditHook& hook : options.audit_hooks) {
    if (!hook) {
      return absl::InvalidArgumentError(
          "pyscope: RuntimeOptions::audit_hooks holds an empty function");
    }
    auto copy = std::make_unique<AuditHook>(hook);
    if (PySys_AddAuditHook(&CallAuditHook, copy.get()) != 0) {
      return absl::InternalError(
          "pyscope: PySys_AddAuditHook refused the hook (an audit hook "
          "installed earlier aborted \"sys.addaudithook\")");
    }
    CoreLock lock(&registrations.mu);
    registrations.audit_hooks.push_back(std::move(copy));
  }
  return absl::OkStatus();
}

// --- Virtual environments ---

struct VenvConfig {
  std::string home;
  std::string version;
};

absl::StatusOr<VenvConfig> ReadPyvenvCfg(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("pyscope: RuntimeOptions::virtual_env: no pyvenv.cfg at ",
                     path, " (is it a directory made by `python -m venv`?)"));
  }
  VenvConfig config;
  std::string line;
  while (std::getline(in, line)) {
    const size_t equals = line.find('=');
    if (equals == std::string::npos) continue;
    const std::string key(
        absl::StripAsciiWhitespace(absl::string_view(line).substr(0, equals)));
    const std::string value(
        absl::StripAsciiWhitespace(absl::string_view(line).substr(equals + 1)));
    if (key == "home") config.home = value;
    // venv writes "version" (3.9-3.10) or "version_info" too (3.11+);
    // virtualenv and uv write "version_info".
    if (key == "version" || (key == "version_info" && config.version.empty())) {
      config.version = value;
    }
  }
  return config;
}

}  // namespace

absl::Status CheckHostOptions(const RuntimeOptions& options, bool adopt) {
  // An earlier runtime's registrations are gone with it (and on 3.9-3.13
  // the table pointer is stale until this puts it back).
  if (!adopt) RepairInittab();
  if (absl::Status status = CheckBuiltinModules(options, adopt); !status.ok()) {
    return status;
  }
  if (adopt && !options.audit_hooks.empty()) {
    return absl::FailedPreconditionError(
        "pyscope: RuntimeOptions::audit_hooks cannot be installed with "
        "Adopt(): the host's interpreter has started, and a hook added now "
        "could never be removed when pyscope lets go of it");
  }
  if (!options.virtual_env.empty() &&
      (!options.home.empty() || !options.module_search_paths.empty())) {
    return absl::InvalidArgumentError(
        "pyscope: RuntimeOptions::virtual_env cannot be combined with home or "
        "module_search_paths (the environment decides both)");
  }
  if (!options.virtual_env.empty() && !options.import_site) {
    return absl::InvalidArgumentError(
        "pyscope: RuntimeOptions::virtual_env needs import_site (the site "
        "module puts the environment's site-packages on sys.path)");
  }
  return absl::OkStatus();
}

absl::Status ApplyBeforeInitialization(const RuntimeOptions& options) {
  RepairInittab();
  absl::Status status = RegisterBuiltinModules(options);
  if (status.ok()) status = InstallAuditHooks(options);
  for (const auto& callback : options.before_initialize) {
    if (!status.ok()) break;
    if (callback) status = callback();
  }
  return status;
}

absl::Status ApplyVirtualEnvironment(const RuntimeOptions& options,
                                     PyConfig* config) {
  if (options.virtual_env.empty()) return absl::OkStatus();
  std::string root = options.virtual_env;
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  absl::StatusOr<VenvConfig> venv = ReadPyvenvCfg(root + "/pyvenv.cfg");
  if (!venv.ok()) return venv.status();
  const std::string ours =
      absl::StrCat(PY_MAJOR_VERSION, ".", PY_MINOR_VERSION);
  if (venv->version != ours && !absl::StartsWith(venv->version, ours + ".")) {
    return absl::FailedPreconditionError(absl::StrCat(
        "pyscope: the virtual environment ", root, " was made for Python ",
        venv->version.empty() ? "(unknown version)" : venv->version,
        " (home = ", venv->home, "), but pyscope embeds Python ", ours,
        "; its packages would not import. Make the environment with ", "python",
        ours, " -m venv"));
  }
  // The environment's own interpreter path: CPython (getpath, then site's
  // venv()) finds pyvenv.cfg next to it and sets sys.prefix and the
  // site-packages from it, exactly as when that python runs.
  const std::string python = root + "/bin/python";
  PyStatus set =
      PyConfig_SetBytesString(config, &config->program_name, python.c_str());
  if (PyStatus_Exception(set)) {
    return absl::InternalError("pyscope: cannot set the program name");
  }
  set = PyConfig_SetBytesString(config, &config->executable, python.c_str());
  if (PyStatus_Exception(set)) {
    return absl::InternalError("pyscope: cannot set the executable");
  }
  return absl::OkStatus();
}

void AfterPythonFinalized() {
  compat::ForgetPathConfig();
  Registrations& registrations = GetRegistrations();
  {
    CoreLock lock(&registrations.mu);
    registrations.audit_hooks.clear();
  }
  RepairInittab();
}

ProcessStateSnapshot ProcessStateSnapshot::Take() {
  ProcessStateSnapshot snapshot;
  sigaction(SIGINT, nullptr, &snapshot.sigint_);
  sigaction(SIGPIPE, nullptr, &snapshot.sigpipe_);
  sigaction(SIGXFSZ, nullptr, &snapshot.sigxfsz_);
  const char* locale = std::setlocale(LC_CTYPE, nullptr);
  snapshot.lc_ctype_locale_ = locale != nullptr ? locale : "C";
  const char* env = std::getenv("LC_CTYPE");
  snapshot.had_lc_ctype_env_ = env != nullptr;
  if (env != nullptr) snapshot.lc_ctype_env_ = env;
  return snapshot;
}

void ProcessStateSnapshot::Restore(bool include_sigint) const {
  if (include_sigint) sigaction(SIGINT, &sigint_, nullptr);
  sigaction(SIGPIPE, &sigpipe_, nullptr);
  sigaction(SIGXFSZ, &sigxfsz_, nullptr);
  std::setlocale(LC_CTYPE, lc_ctype_locale_.c_str());
  if (had_lc_ctype_env_) {
    setenv("LC_CTYPE", lc_ctype_env_.c_str(), 1);
  } else {
    unsetenv("LC_CTYPE");
  }
}

}  // namespace detail
}  // namespace pyscope
