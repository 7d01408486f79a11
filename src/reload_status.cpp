// reload_status.cpp - see reload_status.hpp.  Format, two lines:
//   <master pid> <count> ok|failed
//   <message, newlines replaced by spaces>
#include "preforkd/reload_status.hpp"

#include <algorithm>
#include <fcntl.h>
#include <sstream>
#include <unistd.h>

#include "preforkd/fd.hpp"

namespace preforkd::reload_status {

std::string path_for(const std::string& pid_file)
{
    return pid_file + ".reload";
}

void write(const std::string& path, const Outcome& o)
{
    std::string message = o.message;
    std::replace(message.begin(), message.end(), '\n', ' ');
    std::string text = std::to_string(o.master) + " " + std::to_string(o.count) +
                       (o.ok ? " ok\n" : " failed\n") + message + "\n";
    std::string temp = path + ".tmp";
    Fd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644));
    if (!fd)
        throw sys_error("open", temp);
    if (::write(fd.get(), text.data(), text.size()) != ssize_t(text.size())) {
        int err = errno;
        ::unlink(temp.c_str());
        throw sys_error("write", temp, err);
    }
    fd.reset();
    if (::rename(temp.c_str(), path.c_str()) != 0) {
        int err = errno;
        ::unlink(temp.c_str());
        throw sys_error("rename", path, err);
    }
}

std::optional<Outcome> read(const std::string& path)
{
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd)
        return std::nullopt;
    char buf[4096];
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n <= 0)
        return std::nullopt;
    std::istringstream in(std::string(buf, std::size_t(n)));
    Outcome o;
    std::string verdict;
    long pid = 0;
    if (!(in >> pid >> o.count >> verdict) || pid <= 0 || (verdict != "ok" && verdict != "failed"))
        return std::nullopt;
    o.master = pid_t(pid);
    o.ok = verdict == "ok";
    in.ignore(1);
    std::getline(in, o.message);
    return o;
}

void remove(const std::string& path) noexcept
{
    ::unlink(path.c_str());
}

}  // namespace preforkd::reload_status
