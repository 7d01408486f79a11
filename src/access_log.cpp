// access_log.cpp - Common/Combined Log Format lines and descriptor hand-over.
#include "preforkd/access_log.hpp"

#include <algorithm>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "preforkd/http/fields.hpp"

namespace preforkd::access_log {
namespace {

// Quotes and backslashes in client-supplied fields are escaped, and control
// bytes hex-escaped, so a hostile User-Agent cannot forge a log line.
void append_escaped(std::string& out, std::string_view text)
{
    if (text.empty()) {
        out += '-';
        return;
    }
    static const char hex[] = "0123456789abcdef";
    for (unsigned char c : text) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += char(c);
        } else if (c < 0x20 || c >= 0x7f) {
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 15];
        } else {
            out += char(c);
        }
    }
}

// "[21/Nov/2026:04:22:01 +0000]", formatted once per second: a busy worker
// logs many lines with the same time stamp.
std::string_view clf_time(time_t when)
{
    static time_t cached_when = -1;
    static char cached[64];
    static std::size_t cached_size = 0;
    if (when != cached_when) {
        tm t;
        localtime_r(&when, &t);
        cached_size = strftime(cached, sizeof cached, "[%d/%b/%Y:%H:%M:%S %z]", &t);
        cached_when = when;
    }
    return {cached, cached_size};
}

constexpr mode_t kCreateMode = 0640;

}  // namespace

Mode mode_of(const config::Config& config)
{
    const std::string& a = config.log.access_log;
    if (a == "off")
        return Mode::off;
    if (a == "syslog")
        return Mode::syslog;
    return Mode::file;
}

namespace {

// A log this process creates gets what logrotate's `create 0640 root adm`
// (etc/preforkd.logrotate) gives the next one: mode 0640 whatever the umask
// and, when run as root on a system with an adm group, group adm, so that
// the owner and mode do not change at the first rotation.  Best effort: a
// file that cannot be given them is still the log (false says so).
bool give_rotation_owner(int fd)
{
    if (::fchmod(fd, kCreateMode) != 0)
        return false;
    const group* adm = ::geteuid() == 0 ? ::getgrnam("adm") : nullptr;
    return adm == nullptr || ::fchown(fd, 0, adm->gr_gid) == 0;
}

}  // namespace

int syslog_priority(const config::Config& config)
{
    return config.log.access_facility_code | LOG_INFO;
}

Fd open(const config::Config& config)
{
    if (mode_of(config) != Mode::file)
        return Fd();
    const std::string& path = config.log.access_log;
    Fd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, kCreateMode));
    if (fd)
        give_rotation_owner(fd.get());
    else if (errno == EEXIST)
        fd.reset(::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
    if (!fd)
        throw sys_error("open", path);
    return fd;
}

std::string format(const Entry& e, config::AccessFormat format)
{
    std::string line;
    line.reserve(256);
    append(line, e, format);
    return line;
}

void append(std::string& line, const Entry& e, config::AccessFormat format)
{
    line.append(e.remote.empty() ? "-" : e.remote);
    line += " - - ";
    line += clf_time(e.when);
    line += " \"";
    append_escaped(line, e.request_line);
    line += "\" ";
    http::append_unsigned(line, std::uint64_t(e.status));
    line += ' ';
    if (e.bytes)
        http::append_unsigned(line, e.bytes);
    else
        line += '-';
    if (format == config::AccessFormat::combined) {
        line += " \"";
        append_escaped(line, e.referer);
        line += "\" \"";
        append_escaped(line, e.user_agent);
        line += "\" ";
        http::append_unsigned(line, std::uint64_t(std::max<std::int64_t>(e.micros, 0)));
    }
    line += '\n';
}

namespace {

// One byte of payload carrying one descriptor: the layout both ends share.
struct FdMessage {
    char byte = 'L';
    iovec iov{&byte, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};

    FdMessage()
    {
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
    }
    FdMessage(const FdMessage&) = delete;
    FdMessage& operator=(const FdMessage&) = delete;
};

int receive_one(int channel)
{
    FdMessage m;
    if (::recvmsg(channel, &m.msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) != 1)
        return -1;
    cmsghdr* c = CMSG_FIRSTHDR(&m.msg);
    if (!c || c->cmsg_type != SCM_RIGHTS)
        return -1;
    int fd;
    std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
    return fd;
}

}  // namespace

bool send_fd(int channel, int fd)
{
    FdMessage m;
    cmsghdr* c = CMSG_FIRSTHDR(&m.msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
    return ::sendmsg(channel, &m.msg, MSG_DONTWAIT | MSG_NOSIGNAL) == 1;
}

int receive_fd(int channel)
{
    // Several reopens may have queued several descriptors: keep the newest.
    int newest = -1;
    for (int fd; (fd = receive_one(channel)) >= 0;) {
        if (newest >= 0)
            ::close(newest);
        newest = fd;
    }
    return newest;
}

}  // namespace preforkd::access_log
