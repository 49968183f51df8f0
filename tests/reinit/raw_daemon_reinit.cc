// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Raw C API reproducer: Python daemon threads still running when
// Py_FinalizeEx is called, then CPython initialized again in the same
// process. No pyscope.
//
//   raw_daemon_reinit [DAEMONS]
//
// Exits 0 when the second runtime ran and finalized; a crash, an abort or
// a hang of the second runtime is the hazard (its rate is measured by
// tests/reliability/reinit_soak_test.cc).
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <cstdio>
#include <cstdlib>

namespace {

bool Start() {
  PyConfig config;
  PyConfig_InitIsolatedConfig(&config);
  PyStatus status = Py_InitializeFromConfig(&config);
  PyConfig_Clear(&config);
  return !PyStatus_Exception(status);
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IONBF, 0);
  const int daemons = argc > 1 ? std::atoi(argv[1]) : 4;
  if (!Start()) return 4;
  char code[512];
  std::snprintf(code, sizeof code,
                "import threading, time\n"
                "def spin():\n"
                "    while True:\n"
                "        sum(range(100))\n"
                "        time.sleep(0.0005)\n"
                "for _ in range(%d):\n"
                "    threading.Thread(target=spin, daemon=True).start()\n"
                "time.sleep(0.02)\n",
                daemons);
  if (PyRun_SimpleString(code) != 0) return 5;
  if (Py_FinalizeEx() != 0) return 6;
  std::printf("first=ok\n");
  if (!Start()) return 4;
  if (PyRun_SimpleString("import time\n"
                         "end = time.monotonic() + 0.2\n"
                         "while time.monotonic() < end:\n"
                         "    sum(range(1000))\n"
                         "    time.sleep(0.0005)\n") != 0) {
    return 5;
  }
  if (Py_FinalizeEx() != 0) return 6;
  std::printf("second=ok\n");
  return 0;
}
