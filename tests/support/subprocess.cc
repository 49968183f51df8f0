// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0

#include "subprocess.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"

extern char** environ;

namespace pyscope_test {
namespace {

// Appends whatever `fd` has to `sink`; returns false at end of file.
bool Drain(int fd, std::string* sink) {
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n > 0) {
      sink->append(buffer, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) return false;
    if (errno == EINTR) continue;
    return errno == EAGAIN || errno == EWOULDBLOCK;
  }
}

int MillisUntil(absl::Time deadline) {
  const absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return 0;
  return static_cast<int>(absl::ToInt64Milliseconds(left)) + 1;
}

}  // namespace

std::string ChildResult::Describe() const {
  std::string how;
  if (!started) {
    how = absl::StrCat("not started: ", error);
  } else if (timed_out) {
    how = absl::StrCat("timed out after ", absl::FormatDuration(elapsed),
                       " (killed)");
  } else if (exited) {
    how = absl::StrCat("exited with code ", exit_code);
  } else {
    how = absl::StrCat("killed by signal ", term_signal, " (",
                       strsignal(term_signal), ")");
  }
  return absl::StrCat("child ", how, "\n--- stdout ---\n", out,
                      "--- stderr ---\n", err, "--------------");
}

ChildResult RunChild(const std::vector<std::string>& argv,
                     absl::Duration timeout,
                     const std::vector<std::string>& extra_env) {
  ChildResult result;
  if (argv.empty()) {
    result.error = "empty argv";
    return result;
  }
  int out_pipe[2];
  int err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
    result.error = absl::StrCat("pipe2: ", strerror(errno));
    return result;
  }
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    result.error = absl::StrCat("pipe2: ", strerror(errno));
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return result;
  }

  std::vector<char*> args;
  for (const std::string& arg : argv)
    args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  std::vector<char*> env;
  for (char** entry = environ; *entry != nullptr; ++entry)
    env.push_back(*entry);
  for (const std::string& entry : extra_env) {
    env.push_back(const_cast<char*>(entry.c_str()));
  }
  env.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  // The child starts with default signal dispositions and an empty mask,
  // whatever the test binary (or CPython inside it) changed.
  sigset_t all;
  sigfillset(&all);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attributes, &all);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setflags(&attributes,
                           POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

  const absl::Time start = absl::Now();
  pid_t pid = -1;
  const int spawn_error = posix_spawn(&pid, args[0], &actions, &attributes,
                                      args.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (spawn_error != 0) {
    result.error =
        absl::StrCat("posix_spawn ", argv[0], ": ", strerror(spawn_error));
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    return result;
  }
  result.started = true;
  ::fcntl(out_pipe[0], F_SETFL, O_NONBLOCK);
  ::fcntl(err_pipe[0], F_SETFL, O_NONBLOCK);

  const absl::Time deadline = start + timeout;
  bool out_open = true;
  bool err_open = true;
  bool reaped = false;
  int wait_status = 0;
  // After the child is gone, a grandchild could keep the pipes open; give
  // the remaining output a short grace period, no more.
  absl::Time drain_until = absl::InfiniteFuture();
  while ((out_open || err_open) || !reaped) {
    if (!reaped) {
      const pid_t done = ::waitpid(pid, &wait_status, WNOHANG);
      if (done == pid) {
        reaped = true;
        drain_until = absl::Now() + absl::Seconds(1);
      }
    }
    if (!reaped && absl::Now() >= deadline && !result.timed_out) {
      result.timed_out = true;
      ::kill(pid, SIGKILL);
    }
    if (reaped && absl::Now() >= drain_until) break;
    if (!out_open && !err_open) {
      // Only waiting for the exit now.
      if (!reaped) {
        if (result.timed_out) {
          ::waitpid(pid, &wait_status, 0);
          reaped = true;
        } else {
          ::usleep(1000);
        }
      }
      continue;
    }
    pollfd fds[2];
    int count = 0;
    if (out_open) fds[count++] = {out_pipe[0], POLLIN, 0};
    if (err_open) fds[count++] = {err_pipe[0], POLLIN, 0};
    int wait_ms = 20;
    if (!result.timed_out) wait_ms = std::min(wait_ms, MillisUntil(deadline));
    ::poll(fds, static_cast<nfds_t>(count), wait_ms);
    if (out_open) out_open = Drain(out_pipe[0], &result.out);
    if (err_open) err_open = Drain(err_pipe[0], &result.err);
  }
  ::close(out_pipe[0]);
  ::close(err_pipe[0]);
  result.elapsed = absl::Now() - start;
  if (WIFEXITED(wait_status)) {
    result.exited = true;
    result.exit_code = WEXITSTATUS(wait_status);
  } else if (WIFSIGNALED(wait_status)) {
    result.term_signal = WTERMSIG(wait_status);
  }
  return result;
}

std::string SelfExecutable() {
  char path[4096];
  const ssize_t n = ::readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n <= 0) return "";
  return std::string(path, static_cast<size_t>(n));
}

}  // namespace pyscope_test
