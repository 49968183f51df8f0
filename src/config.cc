// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0

#include "config.h"

#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "host_setup.h"

namespace pyscope {
namespace {

// --- Strings: RuntimeOptions holds UTF-8, PyConfig wide strings. ---

// Decodes strict UTF-8 (no overlongs, no surrogates, at most U+10FFFF).
// False when `text` is not UTF-8.
bool DecodeUtf8(const std::string& text, std::wstring* out) {
  out->clear();
  size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    int extra = 0;
    char32_t code = 0;
    if (lead < 0x80) {
      code = lead;
    } else if ((lead & 0xE0) == 0xC0) {
      extra = 1;
      code = lead & 0x1F;
    } else if ((lead & 0xF0) == 0xE0) {
      extra = 2;
      code = lead & 0x0F;
    } else if ((lead & 0xF8) == 0xF0) {
      extra = 3;
      code = lead & 0x07;
    } else {
      return false;
    }
    if (i + static_cast<size_t>(extra) >= text.size() && extra > 0) {
      return false;  // truncated sequence
    }
    for (int k = 1; k <= extra; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      code = (code << 6) | (next & 0x3F);
    }
    static constexpr char32_t kMinimum[] = {0, 0x80, 0x800, 0x10000};
    if (code < kMinimum[extra] || code > 0x10FFFF ||
        (code >= 0xD800 && code <= 0xDFFF)) {
      return false;
    }
    out->push_back(static_cast<wchar_t>(code));
    i += extra + 1;
  }
  return true;
}

// Where a bad value is: "home", "argv[2]".
std::string FieldName(const char* field, int index) {
  return index < 0 ? field : absl::StrCat(field, "[", index, "]");
}

absl::Status CheckString(const std::string& value, const char* field,
                         int index = -1) {
  if (value.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("pyscope: RuntimeOptions::", FieldName(field, index),
                     " contains a NUL byte at offset ", value.find('\0'),
                     " (CPython would silently cut the value there)"));
  }
  std::wstring ignored;
  if (!DecodeUtf8(value, &ignored)) {
    return absl::InvalidArgumentError(
        absl::StrCat("pyscope: RuntimeOptions::", FieldName(field, index),
                     " is not valid UTF-8 (RuntimeOptions strings are "
                     "UTF-8)"));
  }
  return absl::OkStatus();
}

absl::Status CheckStrings(const std::vector<std::string>& values,
                          const char* field) {
  for (size_t i = 0; i < values.size(); ++i) {
    absl::Status status = CheckString(values[i], field, static_cast<int>(i));
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

std::wstring Wide(const std::string& utf8) {
  std::wstring wide;
  DecodeUtf8(utf8, &wide);  // validated before
  return wide;
}

// A PyConfig wide string as UTF-8 (for messages and file checks; paths
// are UTF-8 on the systems pyscope supports).
std::string Narrow(const wchar_t* wide) {
  std::string out;
  if (wide == nullptr) return out;
  for (; *wide != L'\0'; ++wide) {
    const auto code = static_cast<char32_t>(*wide);
    if (code < 0x80) {
      out.push_back(static_cast<char>(code));
    } else if (code < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (code >> 6)));
      out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
    } else if (code < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (code >> 12)));
      out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (code >> 18)));
      out.push_back(static_cast<char>(0x80 | ((code >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
    }
  }
  return out;
}

absl::Status FromPyStatus(const PyStatus& status, const char* what) {
  if (PyStatus_IsExit(status)) {
    return absl::InternalError(absl::StrCat(
        "pyscope: ", what, " asked to exit with code ", status.exitcode));
  }
  return absl::InternalError(absl::StrCat(
      "pyscope: ", what, " failed",
      status.func != nullptr ? absl::StrCat(" in ", status.func) : "", ": ",
      status.err_msg != nullptr ? status.err_msg : "unknown error"));
}

absl::Status SetString(PyConfig* config, wchar_t** field,
                       const std::string& value, const char* name) {
  if (value.empty()) return absl::OkStatus();
  PyStatus status = PyConfig_SetString(config, field, Wide(value).c_str());
  if (PyStatus_Exception(status)) return FromPyStatus(status, name);
  return absl::OkStatus();
}

absl::Status AppendAll(PyWideStringList* list,
                       const std::vector<std::string>& values,
                       const char* name) {
  for (const std::string& value : values) {
    PyStatus status = PyWideStringList_Append(list, Wide(value).c_str());
    if (PyStatus_Exception(status)) return FromPyStatus(status, name);
  }
  return absl::OkStatus();
}

absl::Status SetArgv(PyConfig* config, const std::vector<std::string>& argv) {
  std::vector<std::wstring> wide;
  std::vector<wchar_t*> pointers;
  wide.reserve(argv.size());
  for (const std::string& arg : argv) wide.push_back(Wide(arg));
  for (std::wstring& arg : wide) pointers.push_back(arg.data());
  PyStatus status = PyConfig_SetArgv(
      config, static_cast<Py_ssize_t>(pointers.size()), pointers.data());
  if (PyStatus_Exception(status)) return FromPyStatus(status, "argv");
  return absl::OkStatus();
}

absl::Status RunEditConfig(const RuntimeOptions& options, PyConfig* config) {
  try {
    return options.edit_config(*config);
  } catch (const std::exception& e) {
    return absl::InternalError(
        absl::StrCat("pyscope: RuntimeOptions::edit_config threw: ", e.what()));
  } catch (...) {
    return absl::InternalError(
        "pyscope: RuntimeOptions::edit_config threw a non-standard exception");
  }
}

// --- The file system: the standard library and the encodings. ---

bool Readable(const std::string& path) {
  return ::access(path.c_str(), R_OK) == 0;
}

bool EndsWith(const std::string& text, const char* suffix) {
  const std::string s(suffix);
  return text.size() >= s.size() &&
         text.compare(text.size() - s.size(), s.size(), s) == 0;
}

// The home CPython will use: PyConfig.home, else PYTHONHOME when the
// environment is read ("prefix[:exec_prefix]"). Empty: computed by CPython.
std::string EffectiveHome(const PyConfig& config) {
  if (config.home != nullptr) return Narrow(config.home);
  if (config.use_environment != 0 && config.isolated == 0) {
    const char* env = std::getenv("PYTHONHOME");
    if (env != nullptr && *env != '\0') {
      const std::string home(env);
      return home.substr(0, home.find(':'));
    }
  }
  return "";
}

// Python's encodings.normalize_encoding after codecs' lower-casing.
std::string NormalizeEncoding(const std::string& name) {
  std::string out;
  bool punct = false;
  for (const char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '.') {
      if (punct && !out.empty()) out.push_back('_');
      out.push_back(static_cast<char>(std::tolower(u)));
      punct = false;
    } else {
      punct = true;
    }
  }
  return out;
}

// Whether the standard library in `stdlib` can look up `encoding`: a module
// encodings/<name>.py, or an alias of that name in encodings/aliases.py.
bool EncodingExists(const std::string& stdlib, const std::string& encoding) {
  const std::string name = NormalizeEncoding(encoding);
  if (name.empty()) return false;
  std::string dotted = name;
  for (char& c : dotted) {
    if (c == '.') c = '_';
  }
  for (const std::string& candidate : {name, dotted}) {
    if (Readable(absl::StrCat(stdlib, "/encodings/", candidate, ".py"))) {
      return true;
    }
  }
  std::ifstream aliases(stdlib + "/encodings/aliases.py");
  std::stringstream text;
  text << aliases.rdbuf();
  const std::string body = text.str();
  for (const std::string& candidate : {name, dotted}) {
    if (body.find(absl::StrCat("'", candidate, "'")) != std::string::npos) {
      return true;
    }
  }
  return false;
}

}  // namespace

namespace detail {

absl::Status BuildConfig(const RuntimeOptions& options, PyConfig* config) {
  if (options.preset == RuntimeOptions::Preset::kPython) {
    PyConfig_InitPythonConfig(config);
  } else {
    PyConfig_InitIsolatedConfig(config);
  }
  // argv is data for sys.argv, never interpreter options.
  config->parse_argv = 0;
  config->install_signal_handlers = options.install_signal_handlers ? 1 : 0;
  config->use_environment = options.use_environment ? 1 : 0;
  config->user_site_directory = options.user_site_directory ? 1 : 0;
  // PyConfig.isolated would override both again (config_read in
  // Python/initconfig.c): an explicit request for either wins.
  if (options.use_environment || options.user_site_directory) {
    config->isolated = 0;
  }
  config->site_import = options.import_site ? 1 : 0;
  config->write_bytecode = options.write_bytecode ? 1 : 0;
  compat::SetSafePath(config,
                      options.preset == RuntimeOptions::Preset::kIsolated);

  absl::Status status = SetString(config, &config->program_name,
                                  options.program_name, "program_name");
  if (status.ok()) {
    status = SetString(config, &config->home, options.home, "home");
  }
  if (status.ok() && !options.argv.empty()) {
    status = SetArgv(config, options.argv);
  }
  if (status.ok() && !options.module_search_paths.empty()) {
    config->module_search_paths_set = 1;
    status = AppendAll(&config->module_search_paths,
                       options.module_search_paths, "module_search_paths");
  }
  if (status.ok()) status = ApplyVirtualEnvironment(options, config);
  if (status.ok() && options.edit_config) {
    status = RunEditConfig(options, config);
  }
  return status;
}

absl::Status CheckConfigBeforeStart(const PyConfig& config) {
  static constexpr const char* kHandlers[] = {
      "strict",           "ignore",       "replace",
      "backslashreplace", "namereplace",  "xmlcharrefreplace",
      "surrogateescape",  "surrogatepass"};
  const struct {
    const wchar_t* value;
    const char* field;
  } handlers[] = {{config.filesystem_errors, "filesystem_errors"},
                  {config.stdio_errors, "stdio_errors"}};
  for (const auto& handler : handlers) {
    if (handler.value == nullptr) continue;
    const std::string name = Narrow(handler.value);
    bool known = false;
    for (const char* candidate : kHandlers) known = known || name == candidate;
    if (!known) {
      return absl::InvalidArgumentError(
          absl::StrCat("pyscope: PyConfig.", handler.field, " is \"", name,
                       "\", which is not one of CPython's error handlers (",
                       absl::StrJoin(kHandlers, ", "),
                       "); others cannot be registered before initialization"));
    }
  }
  const char* const lib = detail::compat::kStdlibDirName;
  const char* const zip = detail::compat::kStdlibZipName;
  std::vector<std::string> tried;
  std::string stdlib;  // the directory holding encodings/, once found
  if (config.module_search_paths_set != 0) {
    for (Py_ssize_t i = 0; i < config.module_search_paths.length; ++i) {
      const std::string dir = Narrow(config.module_search_paths.items[i]);
      const std::string marker = dir + "/encodings/__init__.py";
      tried.push_back(marker);
      if (Readable(marker)) {
        stdlib = dir;
        break;
      }
      // A zip archive on the path may hold the standard library.
      if (EndsWith(dir, ".zip") && Readable(dir)) return absl::OkStatus();
    }
    if (stdlib.empty()) {
      return absl::NotFoundError(absl::StrCat(
          "pyscope: the module search path (RuntimeOptions::"
          "module_search_paths or PyConfig.module_search_paths) does not "
          "contain the Python standard library (no readable encodings "
          "package); tried: ",
          absl::StrJoin(tried, ", ")));
    }
  } else if (const std::string home = EffectiveHome(config); !home.empty()) {
    const std::string dir = absl::StrCat(home, "/lib/", lib);
    const std::string marker = dir + "/encodings/__init__.py";
    const std::string archive = absl::StrCat(home, "/lib/", zip);
    if (Readable(archive) && !Readable(marker)) return absl::OkStatus();
    if (!Readable(marker)) {
      return absl::NotFoundError(absl::StrCat(
          "pyscope: the Python home is \"", home, "\" (",
          config.home != nullptr ? "RuntimeOptions::home or PyConfig.home"
                                 : "the PYTHONHOME environment variable",
          ") but the Python ", PY_MAJOR_VERSION, ".", PY_MINOR_VERSION,
          " standard library is not there; tried: ", marker, ", ", archive));
    }
    stdlib = dir;
  } else {
    // CPython computes the home from its build prefix.
    const std::string dir = absl::StrCat(PYSCOPE_PYTHON_PREFIX, "/lib/", lib);
    if (Readable(dir + "/encodings/__init__.py")) stdlib = dir;
  }
  if (stdlib.empty()) return absl::OkStatus();
  const struct {
    const wchar_t* value;
    const char* field;
  } encodings[] = {{config.filesystem_encoding, "filesystem_encoding"},
                   {config.stdio_encoding, "stdio_encoding"}};
  for (const auto& encoding : encodings) {
    if (encoding.value == nullptr) continue;
    const std::string name = Narrow(encoding.value);
    if (!EncodingExists(stdlib, name)) {
      return absl::NotFoundError(
          absl::StrCat("pyscope: PyConfig.", encoding.field, " is \"", name,
                       "\", which the standard library in ", stdlib,
                       " does not know (no encodings/", NormalizeEncoding(name),
                       ".py and no such alias in encodings/aliases.py)"));
    }
  }
  return absl::OkStatus();
}

absl::Status InitializationError(const PyStatus& status,
                                 const PyConfig& config) {
  const absl::Status base = FromPyStatus(status, "Py_InitializeFromConfig");
  std::vector<std::string> values;
  const std::string home = EffectiveHome(config);
  values.push_back(
      absl::StrCat("home=", home.empty() ? "(computed by CPython)" : home));
  if (config.module_search_paths_set != 0) {
    std::vector<std::string> paths;
    for (Py_ssize_t i = 0; i < config.module_search_paths.length; ++i) {
      paths.push_back(Narrow(config.module_search_paths.items[i]));
    }
    values.push_back(
        absl::StrCat("module_search_paths=[", absl::StrJoin(paths, ", "), "]"));
  }
  if (config.filesystem_encoding != nullptr) {
    values.push_back(absl::StrCat("filesystem_encoding=",
                                  Narrow(config.filesystem_encoding)));
  }
  if (config.stdio_encoding != nullptr) {
    values.push_back(
        absl::StrCat("stdio_encoding=", Narrow(config.stdio_encoding)));
  }
  return absl::Status(
      base.code(),
      absl::StrCat(base.message(),
                   " (configuration: ", absl::StrJoin(values, ", "),
                   "; a codec error usually means the standard library was "
                   "not found there, or an encoding it does not have)"));
}

}  // namespace detail

absl::Status ValidateRuntimeOptions(const RuntimeOptions& options) {
  if (options.preset != RuntimeOptions::Preset::kIsolated &&
      options.preset != RuntimeOptions::Preset::kPython) {
    return absl::InvalidArgumentError(
        absl::StrCat("pyscope: RuntimeOptions::preset has the invalid value ",
                     static_cast<int>(options.preset),
                     " (use Preset::kIsolated or Preset::kPython)"));
  }
  if (options.reinit_hazards != RuntimeOptions::ReinitHazards::kRefuse &&
      options.reinit_hazards != RuntimeOptions::ReinitHazards::kWarnAndTry) {
    return absl::InvalidArgumentError(absl::StrCat(
        "pyscope: RuntimeOptions::reinit_hazards has the invalid value ",
        static_cast<int>(options.reinit_hazards),
        " (use ReinitHazards::kRefuse or ReinitHazards::kWarnAndTry)"));
  }
  absl::Status status = CheckString(options.program_name, "program_name");
  if (status.ok()) status = CheckString(options.home, "home");
  if (status.ok()) status = CheckStrings(options.argv, "argv");
  if (status.ok()) {
    status = CheckStrings(options.module_search_paths, "module_search_paths");
  }
  if (status.ok()) {
    status = CheckStrings(options.prepend_sys_path, "prepend_sys_path");
  }
  if (!status.ok()) return status;
  if (options.drain_deadline < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("pyscope: RuntimeOptions::drain_deadline is negative (",
                     absl::FormatDuration(options.drain_deadline), ")"));
  }
  return absl::OkStatus();
}

}  // namespace pyscope
