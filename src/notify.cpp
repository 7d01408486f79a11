// notify.cpp - sd_notify without libsystemd.
//
// The protocol is small (one datagram per message, newline-separated
// KEY=VALUE lines), so it is implemented here rather than pulling in a
// library.  The socket is connected once at init(); a datagram that cannot be
// delivered is dropped, because a missing supervisor must never stop the
// server.
#include "preforkd/notify.hpp"

#include <cstdlib>
#include <cstring>
#include <ctime>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "preforkd/fd.hpp"

namespace preforkd::notify {
namespace {

sockaddr_un g_address{};
socklen_t g_length = 0;
std::string g_name;   // as NOTIFY_SOCKET said it, for an in-place upgrade

}  // namespace

void init()
{
    const char* path = std::getenv("NOTIFY_SOCKET");
    std::string name = path ? path : "";
    ::unsetenv("NOTIFY_SOCKET");
    if (name.empty() || name.size() >= sizeof g_address.sun_path ||
        (name[0] != '/' && name[0] != '@'))
        return;
    g_address.sun_family = AF_UNIX;
    std::memcpy(g_address.sun_path, name.data(), name.size());
    if (name[0] == '@')
        g_address.sun_path[0] = '\0';   // abstract namespace
    g_length = socklen_t(offsetof(sockaddr_un, sun_path) + name.size());
    g_name = name;
}

const std::string& socket_name() noexcept
{
    return g_name;
}

bool enabled() noexcept
{
    return g_length != 0;
}

bool send(const std::string& state)
{
    if (!enabled())
        return false;
    Fd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd)
        return false;
    return ::sendto(fd.get(), state.data(), state.size(), MSG_NOSIGNAL,
                    reinterpret_cast<const sockaddr*>(&g_address), g_length) ==
           ssize_t(state.size());
}

void ready(const std::string& status)
{
    send("READY=1\nMAINPID=" + std::to_string(::getpid()) + "\nSTATUS=" + status);
}

void reloading()
{
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long long usec = (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

void stopping()
{
    send("STOPPING=1");
}

void status(const std::string& status)
{
    send("STATUS=" + status);
}

}  // namespace preforkd::notify
