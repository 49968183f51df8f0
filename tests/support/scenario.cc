// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0

#include "scenario.h"

#include <cstdio>
#include <cstring>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"

namespace pyscope_test {
namespace {

constexpr char kFlag[] = "--pyscope-scenario=";

std::map<std::string, ScenarioFunction>& Registry() {
  static auto* registry = new std::map<std::string, ScenarioFunction>;
  return *registry;
}

}  // namespace

ScenarioRegistrar::ScenarioRegistrar(const char* name,
                                     ScenarioFunction function) {
  Registry()[name] = function;
}

ChildResult RunScenario(const std::string& name, absl::Duration timeout,
                        const std::vector<std::string>& extra_env) {
  return RunChild({SelfExecutable(), absl::StrCat(kFlag, name)}, timeout,
                  extra_env);
}

bool MaybeRunScenario(int argc, char** argv, int* exit_code) {
  const size_t flag_size = std::strlen(kFlag);
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], kFlag, flag_size) != 0) continue;
    const std::string name = argv[i] + flag_size;
    auto it = Registry().find(name);
    if (it == Registry().end()) {
      std::fprintf(stderr, "no scenario named \"%s\"\n", name.c_str());
      *exit_code = 125;
      return true;
    }
    // Unbuffered, so that what a scenario printed before dying is kept.
    std::setvbuf(stdout, nullptr, _IONBF, 0);
    *exit_code = it->second();
    return true;
  }
  return false;
}

void PrintFact(const char* key, long value) {
  std::printf("%s=%ld\n", key, value);
  std::fflush(stdout);
}

void PrintFact(const char* key, const std::string& value) {
  std::printf("%s=%s\n", key, value.c_str());
  std::fflush(stdout);
}

void PrintFact(const char* key, const char* value) {
  PrintFact(key, std::string(value));
}

std::string FactOf(const ChildResult& child, const std::string& key) {
  const std::string& out = child.out;
  const std::string prefix = key + "=";
  size_t at = out.rfind("\n" + prefix);
  if (at != std::string::npos) {
    ++at;
  } else if (out.rfind(prefix, 0) == 0) {
    at = 0;
  } else {
    return "";
  }
  const size_t start = at + prefix.size();
  return out.substr(start, out.find('\n', start) - start);
}

bool HasFact(const ChildResult& child, const std::string& fact) {
  const std::string& out = child.out;
  return out.rfind(fact + "\n", 0) == 0 ||
         out.find("\n" + fact + "\n") != std::string::npos;
}

const char* CodeName(const absl::Status& status) {
  static thread_local std::string name;
  name = absl::StatusCodeToString(status.code());
  return name.c_str();
}

}  // namespace pyscope_test
