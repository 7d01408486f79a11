// access_log.cpp - access log lines (CLF, Combined, JSON) and descriptor hand-over.
//
// Every field a client chose is escaped for the format it lands in, so no
// request can forge a line or break a parser: CLF escapes quotes,
// backslashes and control bytes as \xHH; JSON escapes by RFC 8259 and writes
// bytes outside ASCII as \u00HH, so the line is valid JSON whatever the
// client sent (such bytes are rare in a request line and never trusted).
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
// `byte_escape` introduces a hex-escaped byte: "\\x" on text lines, "\\u00"
// in JSON strings, where it reads back as the code point of the byte.
void append_bytes_escaped(std::string& out, std::string_view text, const char* byte_escape)
{
    static const char hex[] = "0123456789abcdef";
    auto plain = [](unsigned char c) { return c >= 0x20 && c < 0x7f && c != '"' && c != '\\'; };
    std::size_t i = 0;
    while (i < text.size()) {
        // A run of bytes that need nothing goes in at once.
        std::size_t run = i;
        while (run < text.size() && plain(static_cast<unsigned char>(text[run])))
            ++run;
        out.append(text.data() + i, run - i);
        if (run == text.size())
            return;
        auto c = static_cast<unsigned char>(text[run]);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += char(c);
        } else {
            out += byte_escape;
            out += hex[c >> 4];
            out += hex[c & 15];
        }
        i = run + 1;
    }
}

void append_escaped(std::string& out, std::string_view text)
{
    if (text.empty())
        out += '-';
    else
        append_bytes_escaped(out, text, "\\x");
}

// strftime() of `when` in local time with `format`, then `finish` (if any)
// on the text, kept until the second changes: a busy worker logs many lines
// with the same time stamp.
class SecondCache {
public:
    using Finish = void (*)(char* text, std::size_t& size);
    explicit SecondCache(const char* format, Finish finish = nullptr)
        : format_(format), finish_(finish) {}
    std::string_view text(time_t when)
    {
        if (when != when_) {
            tm t;
            localtime_r(&when, &t);
            size_ = strftime(text_, sizeof text_, format_, &t);
            if (finish_)
                finish_(text_, size_);
            when_ = when;
        }
        return {text_, size_};
    }

private:
    const char* format_;
    Finish finish_;
    time_t when_ = -1;
    char text_[64] = {};
    std::size_t size_ = 0;
};

// strftime's "+0000" becomes "+00:00", as RFC 3339 wants.
void colon_in_offset(char* text, std::size_t& size)
{
    if (size != 24)
        return;
    text[25] = '\0';
    text[24] = text[23];
    text[23] = text[22];
    text[22] = ':';
    size = 25;
}

// "2026-11-21T04:22:01+00:00"
std::string_view iso_time(time_t when)
{
    // thread_local: see worker.cpp
    thread_local SecondCache cache("%Y-%m-%dT%H:%M:%S%z", colon_in_offset);
    return cache.text(when);
}

void append_json_string(std::string& out, std::string_view text)
{
    out += '"';
    append_bytes_escaped(out, text, "\\u00");
    out += '"';
}

void append_json(std::string& line, const Entry& e)
{
    auto field = [&](const char* name, std::string_view value) {
        line.append(",\"").append(name).append("\":");
        append_json_string(line, value);
    };
    auto number = [&](const char* name, std::uint64_t value) {
        line.append(",\"").append(name).append("\":");
        http::append_unsigned(line, value);
    };
    line += "{\"time\":\"";
    line += iso_time(e.when);
    line += '"';
    field("remote", e.remote);
    field("host", e.host);
    field("site", e.site);
    field("request", e.request_line);
    number("status", std::uint64_t(e.status));
    number("bytes", e.bytes);
    field("referer", e.referer);
    field("user_agent", e.user_agent);
    number("duration_us", std::uint64_t(std::max<std::int64_t>(e.micros, 0)));
    if (!e.tls_protocol.empty()) {
        field("tls_protocol", e.tls_protocol);
        field("tls_cipher", e.tls_cipher);
        line.append(",\"tls_resumed\":").append(e.tls_resumed ? "true" : "false");
    }
    line.append(",\"request_id\":\"");
    char id[17];
    for (int i = 15; i >= 0; --i) id[15 - i] = "0123456789abcdef"[(e.request_id >> (4 * i)) & 15];
    line.append(id, 16);
    line += "\"}\n";
}

// "[21/Nov/2026:04:22:01 +0000]"
std::string_view clf_time(time_t when)
{
    // thread_local: see worker.cpp
    thread_local SecondCache cache("[%d/%b/%Y:%H:%M:%S %z]");
    return cache.text(when);
}

constexpr mode_t kCreateMode = 0640;

}  // namespace

std::string escaped(std::string_view text)
{
    std::string out;
    append_escaped(out, text);
    return out;
}

// The configuration names the formats in this enum's order (common,
// combined, then combined_timing and json as the configuration learns
// them), so the value carries over; the unit test holds the two in step.
Format format_of(config::AccessFormat format) noexcept
{
    return Format(int(format));
}

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
    return open_path(config.log.access_log);
}

Fd open_path(const std::string& path)
{
    Fd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, kCreateMode));
    if (fd)
        give_rotation_owner(fd.get());
    else if (errno == EEXIST)
        fd.reset(::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
    if (!fd)
        throw sys_error("open", path);
    return fd;
}

std::string format(const Entry& e, Format format)
{
    std::string line;
    line.reserve(256);
    append(line, e, format);
    return line;
}

void append(std::string& line, const Entry& e, Format format)
{
    if (format == Format::json) {
        append_json(line, e);
        return;
    }
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
    if (format == Format::combined || format == Format::combined_timing ||
        format == Format::combined_tls) {
        line += " \"";
        append_escaped(line, e.referer);
        line += "\" \"";
        append_escaped(line, e.user_agent);
        line += '"';
    }
    if (format == Format::combined_timing) {
        line += ' ';
        http::append_unsigned(line, std::uint64_t(std::max<std::int64_t>(e.micros, 0)));
    }
    if (format == Format::combined_tls) {
        if (e.tls_protocol.empty()) {
            line += " - - -";
        } else {
            line.append(" ").append(e.tls_protocol).append(" ").append(e.tls_cipher);
            line += e.tls_resumed ? " r" : " .";
        }
    }
    line += '\n';
}

namespace {

// Four bytes of payload (the sink) carrying one descriptor: the layout both
// ends share.
struct FdMessage {
    std::uint32_t sink = 0;
    iovec iov{&sink, sizeof sink};
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

bool receive_one(int channel, Received& out)
{
    FdMessage m;
    if (::recvmsg(channel, &m.msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) != ssize_t(sizeof m.sink))
        return false;
    cmsghdr* c = CMSG_FIRSTHDR(&m.msg);
    if (!c || c->cmsg_type != SCM_RIGHTS)
        return false;
    int fd = -1;
    std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
    out.fd.reset(fd);
    out.sink = m.sink;
    return true;
}

}  // namespace

bool send_fd(int channel, int fd, std::uint32_t sink)
{
    FdMessage m;
    m.sink = sink;
    cmsghdr* c = CMSG_FIRSTHDR(&m.msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
    return ::sendmsg(channel, &m.msg, MSG_DONTWAIT | MSG_NOSIGNAL) == ssize_t(sizeof m.sink);
}

std::vector<Received> receive_fds(int channel)
{
    std::vector<Received> newest;
    for (Received r; receive_one(channel, r);) {
        auto same = std::find_if(newest.begin(), newest.end(),
                                 [&](const Received& n) { return n.sink == r.sink; });
        if (same == newest.end())
            newest.push_back(std::move(r));
        else
            same->fd = std::move(r.fd);   // the older one is closed
    }
    return newest;
}

}  // namespace preforkd::access_log
