// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0

#ifndef PYSCOPE_SOURCE_LOCATION_H_
#define PYSCOPE_SOURCE_LOCATION_H_

namespace pyscope {

// Where a guard was created, captured by default arguments (the last
// parameter of every guard constructor) so that misuse diagnostics can name
// the place ("created at worker.cc:42 in Run"). Works in C++17 with GCC and
// Clang (std::source_location is C++20 only). All strings have static
// storage duration; a default-constructed value has line 0 and empty
// strings. Pass one explicitly only to attribute a guard to your caller's
// location (a helper that creates guards on behalf of its caller).
class SourceLocation {
 public:
  static constexpr SourceLocation Current(
      const char* file = __builtin_FILE(), int line = __builtin_LINE(),
      const char* function = __builtin_FUNCTION()) {
    return SourceLocation(file, line, function);
  }
  constexpr SourceLocation() = default;

  constexpr const char* file() const { return file_; }
  constexpr int line() const { return line_; }
  constexpr const char* function() const { return function_; }

 private:
  constexpr SourceLocation(const char* file, int line, const char* function)
      : file_(file), line_(line), function_(function) {}

  const char* file_ = "";
  int line_ = 0;
  const char* function_ = "";
};

}  // namespace pyscope

#endif  // PYSCOPE_SOURCE_LOCATION_H_
