// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0

#ifndef PYSCOPE_DETAIL_STACK_ONLY_H_
#define PYSCOPE_DETAIL_STACK_ONLY_H_

#include <cstddef>

// Makes a guard type stack-only: not copyable, not movable, and not
// allocatable with `new` (a guard's lifetime must be a C++ scope so that
// pairing follows from scoping). Use inside the class body.
#define PYSCOPE_INTERNAL_STACK_ONLY(Type)            \
 public:                                             \
  Type(const Type&) = delete;                        \
  Type& operator=(const Type&) = delete;             \
  Type(Type&&) = delete;                             \
  Type& operator=(Type&&) = delete;                  \
  static void* operator new(std::size_t) = delete;   \
  static void* operator new[](std::size_t) = delete; \
  static void operator delete(void*) = delete;       \
  static void operator delete[](void*) = delete;     \
                                                     \
 private:

#endif  // PYSCOPE_DETAIL_STACK_ONLY_H_
