// support.cpp - what the parts of the configuration code share
// (config/support.hpp): collecting errors in file order, the origin of a
// text, and making paths absolute once, at load, so that no later chdir()
// (daemonizing, chroot) changes what they name.
#include "preforkd/config/support.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <unistd.h>

#include "preforkd/config.hpp"

namespace preforkd::config {

namespace fs = std::filesystem;

void Errors::add(std::string file, unsigned line, std::string message)
{
    met(file);
    found_.push_back({std::move(file), line, std::move(message)});
}

void Errors::met(const std::string& file)
{
    if (std::find(files_.begin(), files_.end(), file) == files_.end())
        files_.push_back(file);
}

std::vector<std::string> Errors::messages() const
{
    const std::vector<std::string>& files = files_;
    auto rank = [&](const Located& e) {
        return std::pair(std::find(files.begin(), files.end(), e.file) - files.begin(), e.line);
    };
    std::vector<Located> sorted = found_;
    std::stable_sort(sorted.begin(), sorted.end(),
                     [&](const Located& a, const Located& b) { return rank(a) < rank(b); });
    std::vector<std::string> lines;
    for (const Located& e : sorted)
        lines.push_back(e.file + ":" + std::to_string(e.line) + ": " + e.message);
    return lines;
}

Origin origin_of_file(const std::string& path, const std::string& base_dir)
{
    Origin origin;
    origin.name = path;
    auto slash = path.rfind('/');
    origin.display_dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
    origin.include_dir = slash == std::string::npos ? "."
                         : slash == 0                ? "/"
                                                     : path.substr(0, slash);
    origin.file = absolute_from(current_dir(), path);
    origin.base_dir =
        base_dir.empty() ? fs::path(origin.file).parent_path().string() : base_dir;
    return origin;
}

std::string errno_text(int error) { return std::strerror(error); }

std::string in_quotes(std::string_view s) { return "\"" + std::string(s) + "\""; }

std::string absolute_from(const std::string& dir, const std::string& path)
{
    if (path.empty() || path[0] == '/')
        return path;
    fs::path result(dir);
    for (const fs::path& part : fs::path(path)) {
        if (part != "." && !part.empty())
            result /= part;
    }
    return result.string();
}

std::string current_dir()
{
    std::error_code ec;
    fs::path cwd = fs::current_path(ec);
    return ec ? std::string("/") : cwd.string();
}

std::optional<std::string> read_all(const std::string& path, std::string& failure)
{
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        failure = "open(" + in_quotes(path) + ") failed: " + errno_text(errno);
        return std::nullopt;
    }
    std::string text;
    char buf[8192];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            failure = "read(" + in_quotes(path) + ") failed: " + errno_text(errno);
            ::close(fd);
            return std::nullopt;
        }
        text.append(buf, std::size_t(n));
    }
    ::close(fd);
    return text;
}

namespace {

std::string join_lines(const std::vector<std::string>& messages)
{
    std::string text;
    for (const std::string& m : messages)
        text += (text.empty() ? "" : "\n") + m;
    return text;
}

}  // namespace

ConfigError::ConfigError(std::vector<std::string> messages)
    : std::runtime_error(join_lines(messages)), messages_(std::move(messages))
{
}

}  // namespace preforkd::config
