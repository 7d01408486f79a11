// pidfile.cpp - a pid file that cannot lie.
//
// The pid is written to a temporary file in the same directory, which is
// locked and then renamed over the old name: a reader sees either the old
// file or the complete new one, and the lock travels with the inode.  The
// lock, not kill(pid, 0), decides whether a master is alive, so a stale file
// whose pid now belongs to an unrelated process is recognised as stale.
#include "preforkd/pidfile.hpp"

#include <cerrno>
#include <cstdlib>
#include <fcntl.h>
#include <stdexcept>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace preforkd::pidfile {
namespace {

pid_t read_pid(int fd)
{
    char buf[32] = {};
    ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return 0;
    char* end = nullptr;
    long pid = std::strtol(buf, &end, 10);
    return pid > 0 && (*end == '\n' || *end == '\0') ? pid_t(pid) : 0;
}

}  // namespace

bool is_locked(const std::string& path, pid_t& pid)
{
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd)
        return false;
    if (::flock(fd.get(), LOCK_SH | LOCK_NB) == 0)
        return false;   // nobody holds it: stale
    pid = read_pid(fd.get());
    return pid > 0;
}

pid_t running_master(const std::string& path)
{
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        if (errno == ENOENT)
            throw std::runtime_error("no pid file " + path + ": preforkd is not running");
        throw sys_error("open", path);
    }
    if (::flock(fd.get(), LOCK_SH | LOCK_NB) == 0)
        throw std::runtime_error("stale pid file " + path +
                                 ": no preforkd master holds it");
    pid_t pid = read_pid(fd.get());
    if (pid <= 0)
        throw std::runtime_error("pid file " + path + " does not hold a pid");
    return pid;
}

PidFile::PidFile(const std::string& path)
{
    pid_t other = 0;
    if (is_locked(path, other))
        throw std::runtime_error("preforkd is already running (pid " +
                                 std::to_string(other) + ", pid file " + path + ")");
    std::string tmp = path + ".XXXXXX";
    fd_.reset(::mkostemp(tmp.data(), O_CLOEXEC));
    if (!fd_)
        throw sys_error("mkstemp", tmp);
    std::string text = std::to_string(::getpid()) + "\n";
    bool ok = ::fchmod(fd_.get(), 0644) == 0 && ::flock(fd_.get(), LOCK_EX | LOCK_NB) == 0 &&
              ::write(fd_.get(), text.data(), text.size()) == ssize_t(text.size());
    if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
        int err = errno;
        ::unlink(tmp.c_str());
        fd_.reset();
        throw sys_error(ok ? "rename" : "write", path, err);
    }
    path_ = path;
}

PidFile PidFile::adopt(const std::string& path, Fd locked)
{
    PidFile p;
    p.path_ = path;
    p.fd_ = std::move(locked);
    return p;
}

PidFile::~PidFile()
{
    remove();
}

void PidFile::remove() noexcept
{
    if (!fd_ || path_.empty())
        return;
    struct stat mine, named;
    // Only our own file: after a botched manual start another master may
    // have replaced it, and its pid file must survive our exit.
    if (::fstat(fd_.get(), &mine) == 0 && ::stat(path_.c_str(), &named) == 0 &&
        mine.st_dev == named.st_dev && mine.st_ino == named.st_ino)
        ::unlink(path_.c_str());
    fd_.reset();
    path_.clear();
}

}  // namespace preforkd::pidfile
