// fd.cpp - the descriptor owner and the syscall error helpers.
//
// Errors from system calls are reported as "call(object) failed: reason" so
// that an administrator can tell which file, address or user was involved.
#include "preforkd/fd.hpp"

#include <cerrno>
#include <cstring>
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
    // close() is not retried on EINTR: Linux frees the number either way and
    // a retry could close a descriptor another owner has just been given.
    if (fd_ >= 0)
        ::close(fd_);
    fd_ = fd;
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
