// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Raw C API reproducer for re-initialization: no pyscope. Each cycle
// initializes CPython (isolated config), imports the modules named on the
// command line and uses each a little, then calls Py_FinalizeEx.
//
//   raw_reinit CYCLES MODULE...
//
// RAW_REINIT_PATH=DIR appends DIR to sys.path before the imports (a
// third-party module such as numpy); RAW_REINIT_IMPORT_ONLY=1 imports
// without the small use below.
// Prints "cycle=N ok" after each cycle that worked, "cycle=N import-error"
// (and exits 3) when an import failed in a later cycle. A module that does
// not survive re-initialization shows as an abort or a segfault of this
// program in cycle 2 or later, or as an import error there; the soak
// (tests/reliability/reinit_soak_test.cc) runs it in a child process with a
// timeout for every module it lists.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

// A small use of each module, so that its state is really created. For
// modules without an entry, importing is the use.
const char* UseOf(const char* module) {
  static const struct {
    const char* module;
    const char* code;
  } kUses[] = {
      {"_decimal", "import decimal; str(decimal.Decimal(1) / 3)"},
      {"_datetime", "import datetime; datetime.datetime.now().isoformat()"},
      {"_json", "import json; json.dumps({'a': [1, 2.5]})"},
      {"_pickle", "import pickle; pickle.loads(pickle.dumps([1, 'x']))"},
      {"_ctypes", "import ctypes; ctypes.CFUNCTYPE(ctypes.c_int)(lambda: 1)()"},
      {"_socket", "import socket; socket.socket().close()"},
      {"_sqlite3", "import sqlite3; sqlite3.connect(':memory:').close()"},
      {"_asyncio", "import asyncio; asyncio.run(asyncio.sleep(0))"},
      {"_elementtree",
       "import xml.etree.ElementTree as E; E.fromstring('<a/>')"},
      {"pyexpat",
       "import xml.parsers.expat as x; x.ParserCreate().Parse('<a/>')"},
      {"_ssl", "import ssl; ssl.create_default_context()"},
      {"_hashlib", "import hashlib; hashlib.sha256(b'x').hexdigest()"},
      {"array", "import array; array.array('i', [1, 2]).tobytes()"},
      {"_struct", "import struct; struct.pack('<i', 1)"},
      {"math", "import math; math.sqrt(2.0)"},
      {"unicodedata", "import unicodedata; unicodedata.name('a')"},
      {"zlib", "import zlib; zlib.decompress(zlib.compress(b'x'))"},
      {"select", "import select; select.poll()"},
      {"mmap", "import mmap; mmap.mmap(-1, 4096).close()"},
      {"numpy", "import numpy; numpy.arange(3).sum()"},
  };
  for (size_t i = 0; i < sizeof kUses / sizeof kUses[0]; ++i) {
    if (strcmp(kUses[i].module, module) == 0) return kUses[i].code;
  }
  return nullptr;
}

bool Start() {
  PyConfig config;
  PyConfig_InitIsolatedConfig(&config);
  PyStatus status = Py_InitializeFromConfig(&config);
  PyConfig_Clear(&config);
  if (PyStatus_Exception(status)) {
    fprintf(stderr, "Py_InitializeFromConfig: %s\n",
            status.err_msg ? status.err_msg : "(no message)");
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IONBF, 0);
  if (argc < 3) {
    fprintf(stderr, "usage: %s CYCLES MODULE...\n", argv[0]);
    return 2;
  }
  const int cycles = atoi(argv[1]);
  for (int cycle = 1; cycle <= cycles; ++cycle) {
    if (!Start()) return 4;
    const char* extra_path = getenv("RAW_REINIT_PATH");
    if (extra_path != nullptr) {
      PyObject* sys_path = PySys_GetObject("path");  // borrowed
      PyObject* entry = PyUnicode_DecodeFSDefault(extra_path);
      if (sys_path == nullptr || entry == nullptr ||
          PyList_Append(sys_path, entry) != 0) {
        return 4;
      }
      Py_DECREF(entry);
    }
    for (int i = 2; i < argc; ++i) {
      PyObject* module = PyImport_ImportModule(argv[i]);
      if (module == nullptr) {
        PyErr_Print();
        printf("cycle=%d import-error %s\n", cycle, argv[i]);
        Py_FinalizeEx();
        return cycle == 1 ? 5 : 3;
      }
      Py_DECREF(module);
      const char* use = getenv("RAW_REINIT_IMPORT_ONLY") != nullptr
                            ? nullptr
                            : UseOf(argv[i]);
      if (use != nullptr && PyRun_SimpleString(use) != 0) {
        printf("cycle=%d use-error %s\n", cycle, argv[i]);
        Py_FinalizeEx();
        return cycle == 1 ? 5 : 3;
      }
    }
    if (Py_FinalizeEx() != 0) {
      printf("cycle=%d finalize-error\n", cycle);
      return 6;
    }
    // Resident set size after the cycle, to compare with the soak's.
    long size = 0, resident = 0;
    FILE* statm = std::fopen("/proc/self/statm", "r");
    if (statm != nullptr) {
      if (std::fscanf(statm, "%ld %ld", &size, &resident) != 2) resident = 0;
      std::fclose(statm);
    }
    printf("cycle=%d ok rss_kb=%ld\n", cycle, resident * 4);
  }
  return 0;
}
