// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// The host-integration steps of ScopedRuntime's initialization and
// finalization (runtime.cc calls them): built-in modules, audit hooks and
// other pre-initialization registrations, the virtual environment, the
// process state CPython changes, and repairs after Py_FinalizeEx.

#ifndef PYSCOPE_SRC_HOST_SETUP_H_
#define PYSCOPE_SRC_HOST_SETUP_H_

#include <signal.h>

#include <string>

#include "absl/status/status.h"
#include "pyscope/runtime.h"

namespace pyscope::detail {

// Checks the host-integration options before anything is started
// (`adopt`: for ScopedRuntime::Adopt).
absl::Status CheckHostOptions(const RuntimeOptions& options, bool adopt);

// Before Py_InitializeFromConfig: puts back the built-in table a previous
// finalization left dangling, registers the built-in modules and audit
// hooks, and runs the before_initialize callbacks.
absl::Status ApplyBeforeInitialization(const RuntimeOptions& options);

// Sets up `config` for options.virtual_env (nothing when it is empty).
absl::Status ApplyVirtualEnvironment(const RuntimeOptions& options,
                                     PyConfig* config);

// After Py_FinalizeEx returned: the built-in table is put back and the
// audit hooks CPython removed are freed.
void AfterPythonFinalized();

// What CPython may change in the process at initialization, taken before
// and put back after it (RuntimeOptions::restore_process_state).
class ProcessStateSnapshot {
 public:
  static ProcessStateSnapshot Take();
  // Restores everything; SIGINT only when `include_sigint`.
  void Restore(bool include_sigint) const;

 private:
  struct sigaction sigint_ = {};
  struct sigaction sigpipe_ = {};
  struct sigaction sigxfsz_ = {};
  std::string lc_ctype_locale_;
  bool had_lc_ctype_env_ = false;
  std::string lc_ctype_env_;
};

}  // namespace pyscope::detail

#endif  // PYSCOPE_SRC_HOST_SETUP_H_
