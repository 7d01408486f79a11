// handoff.cpp - the parcel wire format and its descriptor passing.
//
// The format is fixed-width fields in host byte order (both ends are this
// program on this machine), a magic word that also carries the version, then
// the address and the bytes, their lengths given up front.  decode() checks
// every length against what arrived, so a short or padded message is
// refused rather than read past.
#include "preforkd/handoff.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

#include "preforkd/connection.hpp"

namespace preforkd::handoff {
namespace {

constexpr std::uint32_t kMagic = 0x32764b50;   // "PKv2"

struct Fixed {
    std::uint32_t magic;
    std::uint8_t kind;
    std::uint8_t tls;
    std::uint16_t remote_size;
    std::uint32_t listener;
    std::uint32_t requests;
    std::int64_t since_ms;
    std::int32_t idle_timeout_ms;
    std::int32_t head_timeout_ms;
    std::int32_t head_timeout_max_ms;
    std::int32_t min_rate;
    std::uint32_t max_head;
    std::uint32_t bytes_size;
    std::int64_t file_offset;
    std::int64_t file_left;
    std::int32_t send_timeout_ms;
    std::uint32_t answer_size;
    std::uint8_t close_after;
};

bool valid_kind(std::uint8_t k)
{
    return k >= std::uint8_t(Kind::keepalive) && k <= std::uint8_t(Kind::sending);
}

}  // namespace

std::int64_t head_deadline_ms(std::int64_t since_ms, std::int32_t timeout_ms,
                              std::int32_t timeout_max_ms, std::int32_t min_rate,
                              std::size_t bytes) noexcept
{
    std::int64_t deadline = since_ms + timeout_ms;
    if (min_rate <= 0)
        return deadline;
    std::int64_t earned = std::int64_t(bytes) * 1000 / min_rate;
    std::int64_t cap = since_ms + std::max(timeout_max_ms, timeout_ms);
    return std::min(cap, deadline + earned);
}

std::int64_t Parcel::deadline_ms() const noexcept
{
    if (kind == Kind::sending)
        return since_ms + send_timeout_ms;
    if (kind == Kind::tls_hello || (kind == Kind::keepalive && bytes.empty()))
        return since_ms + idle_timeout_ms;
    return head_deadline_ms(since_ms, head_timeout_ms, head_timeout_max_ms, min_rate,
                            bytes.size());
}

Parcel parcel_for(Kind kind, const connection::Settings& s, int listener, std::uint32_t requests,
                  std::int64_t since_ms, std::int32_t idle_timeout_ms, std::string remote)
{
    Parcel p;
    p.kind = kind;
    p.listener = std::uint32_t(listener);
    p.requests = requests;
    p.since_ms = since_ms;
    p.idle_timeout_ms = idle_timeout_ms;
    p.head_timeout_ms = s.header_timeout_ms;
    p.head_timeout_max_ms = s.header_timeout_max_ms;
    p.min_rate = s.header_min_rate;
    p.max_head = std::uint32_t(s.limits.max_header_size);
    p.remote = std::move(remote);
    return p;
}

std::string encode(const Parcel& p)
{
    Fixed f{};
    f.magic = kMagic;
    f.kind = std::uint8_t(p.kind);
    f.tls = p.tls ? 1 : 0;
    f.remote_size = std::uint16_t(std::min<std::size_t>(p.remote.size(), 255));
    f.listener = p.listener;
    f.requests = p.requests;
    f.since_ms = p.since_ms;
    f.idle_timeout_ms = p.idle_timeout_ms;
    f.head_timeout_ms = p.head_timeout_ms;
    f.head_timeout_max_ms = p.head_timeout_max_ms;
    f.min_rate = p.min_rate;
    f.max_head = p.max_head;
    f.bytes_size = std::uint32_t(p.bytes.size());
    f.answer_size = p.answer_size;
    f.file_offset = p.file_offset;
    f.file_left = p.file_left;
    f.send_timeout_ms = p.send_timeout_ms;
    f.close_after = p.close_after ? 1 : 0;
    std::string wire(reinterpret_cast<const char*>(&f), sizeof f);
    wire.append(p.remote, 0, f.remote_size);
    wire += p.bytes;
    return wire;
}

std::optional<Parcel> decode(std::string_view wire)
{
    Fixed f;
    if (wire.size() < sizeof f)
        return std::nullopt;
    std::memcpy(&f, wire.data(), sizeof f);
    if (f.magic != kMagic || !valid_kind(f.kind) || f.tls > 1 || f.close_after > 1 ||
        f.answer_size > f.bytes_size ||
        wire.size() != sizeof f + f.remote_size + std::size_t(f.bytes_size))
        return std::nullopt;
    Parcel p;
    p.kind = Kind(f.kind);
    p.tls = f.tls == 1;
    p.listener = f.listener;
    p.requests = f.requests;
    p.since_ms = f.since_ms;
    p.idle_timeout_ms = f.idle_timeout_ms;
    p.head_timeout_ms = f.head_timeout_ms;
    p.head_timeout_max_ms = f.head_timeout_max_ms;
    p.min_rate = f.min_rate;
    p.max_head = f.max_head;
    p.answer_size = f.answer_size;
    p.file_offset = f.file_offset;
    p.file_left = f.file_left;
    p.send_timeout_ms = f.send_timeout_ms;
    p.close_after = f.close_after == 1;
    p.remote = wire.substr(sizeof f, f.remote_size);
    p.bytes = wire.substr(sizeof f + f.remote_size);
    return p;
}

bool send_parcel(int sock, int fd, const Parcel& p, int file)
{
    std::string wire = encode(p);
    iovec iov{wire.data(), wire.size()};
    int fds[2] = {fd, file};
    std::size_t count = file >= 0 ? 2 : 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof fds)] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(count * sizeof(int));
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(count * sizeof(int));
    std::memcpy(CMSG_DATA(c), fds, count * sizeof(int));
    for (;;) {
        ssize_t n = ::sendmsg(sock, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n == ssize_t(wire.size()))
            return true;
        if (n < 0 && errno == EINTR)
            continue;
        if (n >= 0)
            errno = EMSGSIZE;
        return false;
    }
}

std::optional<Received> receive_parcel(int sock)
{
    // One buffer per process, never initialised: recvmsg() writes only the
    // parcel's own bytes, so a worker touches a page or two of it, where a
    // zero-filled buffer per call cost a 66 KiB memset per resumed
    // connection and made all of it private memory in every worker.  Workers
    // and the parker are single-threaded.
    static char buf[kMaxParcel];
    iovec iov{buf, sizeof buf};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n;
    do
        n = ::recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return std::nullopt;
    if (n == 0) {
        errno = EPIPE;   // every sender is gone
        return std::nullopt;
    }
    // Every descriptor that came is owned here first, so none can leak.
    std::vector<Fd> fds;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (std::size_t i = 0; i < count; ++i) {
            int fd;
            std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            fds.emplace_back(fd);
        }
    }
    auto parcel = decode(std::string_view(buf, std::size_t(n)));
    std::size_t want = parcel && parcel->kind == Kind::sending ? 2 : 1;
    if (!parcel || fds.size() != want || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
        errno = EPROTO;
        return std::nullopt;
    }
    Received r{std::move(fds[0]), std::move(*parcel), {}};
    if (want == 2)
        r.file = std::move(fds[1]);
    return r;
}

}  // namespace preforkd::handoff
