// fd.hpp - a move-only owner of one file descriptor.
//
// Every descriptor in preforkd has exactly one owner.  Fd closes what it
// owns when destroyed and never throws doing so; close() is not retried on
// EINTR because on Linux the descriptor is already gone by then.  release()
// hands ownership to someone else (a dup2 target, a child's table).
#pragma once

#include <string>
#include <system_error>
#include <utility>

namespace preforkd {

class Fd {
public:
    Fd() noexcept = default;
    explicit Fd(int fd) noexcept : fd_(fd) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    Fd& operator=(Fd&& other) noexcept;
    ~Fd();

    int get() const noexcept { return fd_; }
    bool valid() const noexcept { return fd_ >= 0; }
    explicit operator bool() const noexcept { return valid(); }
    int release() noexcept { return std::exchange(fd_, -1); }
    void reset(int fd = -1) noexcept;

private:
    int fd_ = -1;
};

// Both ends of a close-on-exec pipe.
struct Pipe {
    Fd read;
    Fd write;
};
Pipe make_pipe();

// Everything readable from `fd` until EOF (EINTR retried, errors end it).
std::string read_all(int fd);

// The error for a failed system call: "open(/etc/x) failed: No such file".
// `call` names the syscall, `object` what it was applied to (may be empty).
std::system_error sys_error(const std::string& call, const std::string& object,
                            int err);

// Same, with errno.
std::system_error sys_error(const std::string& call, const std::string& object = "");

// The message text for a syscall failure, without throwing.
std::string sys_message(const std::string& call, const std::string& object, int err);

}  // namespace preforkd
