// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// What the reliability suites share: their size knobs (environment
// variables, so that CI runs short variants and scripts/soak the large
// ones with the same assertions), the "figure:" lines that
// scripts/reliability_report reads, and running many children two at a
// time.

#ifndef PYSCOPE_TESTS_RELIABILITY_RELIABILITY_H_
#define PYSCOPE_TESTS_RELIABILITY_RELIABILITY_H_

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "pyscope/detail/compat.h"  // Python.h
#include "support/subprocess.h"

namespace pyscope_test {

// The integer in environment variable `name`, or `fallback`.
inline long Knob(const char* name, long fallback) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return fallback;
  return std::strtol(value, nullptr, 10);
}

// The CPython this binary embeds, e.g. "3.12.1".
inline std::string PythonVersion() {
  return std::to_string(PY_MAJOR_VERSION) + "." +
         std::to_string(PY_MINOR_VERSION) + "." +
         std::to_string(PY_MICRO_VERSION);
}

// One line scripts/reliability_report collects:
//   figure: <suite> python=<version> key=value ...
inline void Figure(const std::string& suite, const std::string& fields) {
  std::printf("figure: %s python=%s %s\n", suite.c_str(),
              PythonVersion().c_str(), fields.c_str());
  std::fflush(stdout);
}

// Runs `count` children, `parallel` at a time; `run(i)` starts child i and
// returns its result; `done(i, result)` is called under a lock.
inline void RunMany(int count, int parallel,
                    const std::function<ChildResult(int)>& run,
                    const std::function<void(int, const ChildResult&)>& done) {
  std::mutex mu;
  int next = 0;
  std::vector<std::thread> workers;
  for (int w = 0; w < parallel; ++w) {
    workers.emplace_back([&] {
      for (;;) {
        int i;
        {
          std::lock_guard<std::mutex> lock(mu);
          if (next >= count) return;
          i = next++;
        }
        ChildResult result = run(i);
        std::lock_guard<std::mutex> lock(mu);
        done(i, result);
      }
    });
  }
  for (std::thread& t : workers) t.join();
}

}  // namespace pyscope_test

#endif  // PYSCOPE_TESTS_RELIABILITY_RELIABILITY_H_
