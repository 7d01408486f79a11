// fd.cpp - the descriptor owner and the syscall error helpers.
//
// Errors from system calls are reported as "call(object) failed: reason" so
// that an administrator can tell which file, address or user was involved.
#include "preforkd/fd.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace preforkd {

Fd& Fd::operator=(Fd&& other) noexcept
{
    if (this != &other)
        reset(other.release());
    return *this;
}

Fd::~Fd()
{
    reset();
}

void Fd::reset(int fd) noexcept
{
    // An empty Fd emptied again is not written to: a forked worker that
    // empties the master's table of Fds (a few thousand, most of them empty)
    // would otherwise copy every page of it, 132 KiB per worker.
    if (fd_ == fd)
        return;
    // close() is not retried on EINTR: Linux frees the number either way and
    // a retry could close a descriptor another owner has just been given.
    if (fd_ >= 0)
        ::close(fd_);
    fd_ = fd;
}

Pipe make_pipe()
{
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0)
        throw sys_error("pipe");
    return Pipe{Fd(fds[0]), Fd(fds[1])};
}

std::string read_all(int fd)
{
    std::string text;
    char buf[1024];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) != 0;) {
        if (n > 0)
            text.append(buf, std::size_t(n));
        else if (errno != EINTR)
            break;
    }
    return text;
}

std::string sys_message(const std::string& call, const std::string& object, int err)
{
    std::string text = call;
    if (!object.empty())
        text += "(" + object + ")";
    text += " failed: ";
    text += std::strerror(err);
    return text;
}

std::system_error sys_error(const std::string& call, const std::string& object, int err)
{
    // system_error appends ": <strerror>" to its what() itself.
    std::string what = call;
    if (!object.empty())
        what += "(" + object + ")";
    return std::system_error(err, std::generic_category(), what + " failed");
}

std::system_error sys_error(const std::string& call, const std::string& object)
{
    return sys_error(call, object, errno);
}

}  // namespace preforkd
