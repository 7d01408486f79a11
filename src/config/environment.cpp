// environment.cpp - what -t checks beyond the text (check_environment()).
//
// A configuration can be well-formed and still not start: a root that does
// not exist, a user the system does not know, an access log, pid file or
// unix socket whose directory is missing.  These are checked by -t, at start and in a reload's checking
// child, and reported all at once, each naming the key and the path.
#include "preforkd/config.hpp"

#include <cerrno>
#include <fcntl.h>
#include <filesystem>
#include <grp.h>
#include <pwd.h>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

#include "preforkd/config/support.hpp"
#include "preforkd/tls/tickets.hpp"

namespace preforkd::config {
namespace {

namespace fs = std::filesystem;

void check_directory(std::vector<std::string>& problems, const std::string& what,
                     const std::string& path)
{
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0)
        problems.push_back(what + " " + in_quotes(path) + ": " + errno_text(errno));
    else if (!S_ISDIR(st.st_mode))
        problems.push_back(what + " " + in_quotes(path) + ": " + errno_text(ENOTDIR));
}

void check_readable(std::vector<std::string>& problems, const std::string& what,
                    const std::string& path)
{
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        problems.push_back(what + " " + in_quotes(path) + ": " + errno_text(errno));
    else
        ::close(fd);
}

// The ticket key file is read as the master will read it (its size is the
// usual mistake), and named with the setting's file:line, as a syntax error
// is; the mode warning is left to the master's own read.
void check_ticket_keys(std::vector<std::string>& problems, const Config& c)
{
    if (c.tls.ticket_key_file.empty())
        return;
    try {
        tls::tickets::read_key_file(c.tls.ticket_key_file, false);
    } catch (const std::exception& e) {
        problems.push_back(tls::tickets::located(c.tls, e.what()));
    }
}

// getpwnam() and getgrnam() say "not found" with a null result and one of
// several errno values (or none); only other errors are worth showing.
bool lookup_failed_for_real(int error)
{
    return error != 0 && error != ENOENT && error != ESRCH && error != EBADF && error != EPERM;
}

void check_user_name(std::vector<std::string>& problems, const std::string& key,
                     const std::string& name)
{
    errno = 0;
    if (!name.empty() && !::getpwnam(name.c_str()))
        problems.push_back(key + " " + in_quotes(name) + ": " +
                           (lookup_failed_for_real(errno) ? errno_text(errno) : "no such user"));
}

void check_group_name(std::vector<std::string>& problems, const std::string& key,
                      const std::string& name)
{
    errno = 0;
    if (!name.empty() && !::getgrnam(name.c_str()))
        problems.push_back(key + " " + in_quotes(name) + ": " +
                           (lookup_failed_for_real(errno) ? errno_text(errno) : "no such group"));
}

void check_user(std::vector<std::string>& problems, const Config& c)
{
    check_user_name(problems, "user", c.user);
    check_group_name(problems, "group", c.group);
    check_user_name(problems, "unix_owner", c.unix_owner);
    check_group_name(problems, "unix_group", c.unix_group);
}

void check_log_directory(std::vector<std::string>& problems, const std::string& what,
                         const std::string& log)
{
    if (log == "syslog" || log == "off")
        return;
    std::string dir = fs::path(log).parent_path().string();
    check_directory(problems, what + " directory", dir.empty() ? "." : dir);
}

// Each path once: two hundred sites on one root are one problem, not two
// hundred.  The password files are read by the master at start; -t says now
// if one cannot be.
void check_sites(std::vector<std::string>& problems, const Config& c)
{
    std::set<std::string> seen = {fs::path(c.log.access_log).parent_path().string()};
    auto once = [&](const std::string& path) { return seen.insert(path).second; };
    auto check_rules = [&](const Rules& r, const std::string& scope) {
        const std::string& dir = r.alias.empty() ? r.root : r.alias;
        if (once(dir))
            check_directory(problems, scope + (r.alias.empty() ? ".root" : ".alias"), dir);
        if (!r.auth_basic_file.empty() && once(r.auth_basic_file))
            check_readable(problems, scope + ".auth_basic_file", r.auth_basic_file);
    };
    for (const Site& site : c.sites) {
        check_rules(site.rules, "sites");
        if (once(fs::path(site.access_log).parent_path().string()))
            check_log_directory(problems, "sites.access_log", site.access_log);
        for (const Location& loc : site.locations)
            check_rules(loc.rules, "locations");
    }
}

// The master creates its pid file and its unix sockets at start, but not
// the directories they go in: a missing one would fail the start (or a
// reload adding a socket) after -t said "ok".
void check_runtime_directories(std::vector<std::string>& problems, const Config& c)
{
    auto parent = [](const std::string& path) {
        std::string dir = fs::path(path).parent_path().string();
        return dir.empty() ? std::string("/") : dir;
    };
    check_directory(problems, "pid_file directory", parent(c.pid_file));
    if (!c.control_socket.empty())   // else it goes beside the pid file
        check_directory(problems, "control_socket directory", parent(c.control_socket));
    std::set<std::string> seen;
    for (const std::string& entry : c.listen) {
        if (entry.rfind("unix:", 0) != 0)
            continue;
        std::string dir = parent(entry.substr(5));
        if (seen.insert(dir).second)
            check_directory(problems, "listen " + in_quotes(entry) + " directory", dir);
    }
}

}  // namespace

std::vector<std::string> check_environment(const Config& c)
{
    std::vector<std::string> problems;
    if (c.sites.empty())   // else each site's root is checked, and http.root may be unused
        check_directory(problems, "http.root", c.http.root);
    if (!c.chroot.empty())
        check_directory(problems, "chroot", c.chroot);
    check_user(problems, c);
    check_readable(problems, "http.mime_types", c.http.mime_types);
    check_log_directory(problems, "log.access_log", c.log.access_log);
    check_runtime_directories(problems, c);
    check_sites(problems, c);
    check_ticket_keys(problems, c);
    return problems;
}

}  // namespace preforkd::config
