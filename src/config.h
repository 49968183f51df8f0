// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// RuntimeOptions -> PyConfig: checking the options, building the
// configuration, checking it against the file system before CPython sees
// it, and explaining a failed initialization.

#ifndef PYSCOPE_SRC_CONFIG_H_
#define PYSCOPE_SRC_CONFIG_H_

#include "absl/status/status.h"
#include "pyscope/runtime.h"

namespace pyscope::detail {

// Initializes `config` from `options` and runs options.edit_config on it
// (an exception it throws becomes kInternal). The caller calls
// PyConfig_Clear afterwards, also on failure. The options must have passed
// ValidateRuntimeOptions.
absl::Status BuildConfig(const RuntimeOptions& options, PyConfig* config);

// Checks what CPython would otherwise find out half way through its
// initialization, when it can no longer be started again in the process:
// that the standard library is where the final configuration says (home,
// PYTHONHOME when the environment is read, module_search_paths) and that
// the encodings it names exist there (kNotFound, naming what was tried), and
// that the error handlers it names are CPython's own (kInvalidArgument; no
// other can be registered before initialization).
absl::Status CheckConfigBeforeStart(const PyConfig& config);

// A failed Py_InitializeFromConfig as a status, with the configuration
// values a user needs to find the cause.
absl::Status InitializationError(const PyStatus& status,
                                 const PyConfig& config);

}  // namespace pyscope::detail

#endif  // PYSCOPE_SRC_CONFIG_H_
