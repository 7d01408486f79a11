// privileges.cpp - resolving the workers' identity and dropping to it.
//
// Dropping happens in exactly one function.  Groups go first (setgroups needs
// root), then the gid, then the uid; afterwards setuid(0) must fail, or the
// worker refuses to serve.  The supplementary groups are looked up once, in
// the master (getgrouplist), not by initgroups(3) in every worker: the name
// service modules that lookup loads would otherwise be mapped and relocated
// anew in each worker, about 30 KiB of private memory apiece.
#include "preforkd/privileges.hpp"

#include <cerrno>
#include <grp.h>
#include <pwd.h>
#include <stdexcept>
#include <sys/prctl.h>
#include <unistd.h>
#include <vector>

#include "preforkd/fd.hpp"
#include "preforkd/log.hpp"

namespace preforkd::privileges {
namespace {

gid_t group_id(const std::string& name)
{
    errno = 0;
    const group* g = ::getgrnam(name.c_str());
    if (!g)
        throw std::runtime_error("unknown group \"" + name + "\"");
    return g->gr_gid;
}

void fill_user(Identity& id, const std::string& name)
{
    const passwd* pw = ::getpwnam(name.c_str());
    if (!pw)
        throw std::runtime_error("unknown user \"" + name + "\"");
    id.user = name;
    id.uid = pw->pw_uid;
    id.gid = pw->pw_gid;
}

// The user's groups in /etc/group (and the other name services), with
// `gid` among them, as initgroups(3) would set them.
std::vector<gid_t> group_list(const std::string& user, gid_t gid)
{
    std::vector<gid_t> groups(16);
    for (;;) {
        int n = int(groups.size());
        if (::getgrouplist(user.c_str(), gid, groups.data(), &n) >= 0) {
            groups.resize(std::size_t(n));
            return groups;
        }
        if (std::size_t(n) <= groups.size())
            groups.resize(groups.size() * 2);   // no size said: grow anyway
        else
            groups.resize(std::size_t(n));
    }
}

}  // namespace

Identity resolve(const config::Config& config)
{
    Identity id;
    id.chroot = config.chroot;
    if (::geteuid() != 0) {
        log::notice("not started as root: workers keep uid " + std::to_string(::geteuid()));
        return id;
    }
    id.drop = true;
    if (config.user.empty()) {
        log::notice("no user configured: workers run as nobody");
        fill_user(id, "nobody");
        id.gid = group_id(config.group.empty() ? "nogroup" : config.group);
        id.groups = group_list(id.user, id.gid);
        return id;
    }
    fill_user(id, config.user);
    if (!config.group.empty())
        id.gid = group_id(config.group);
    id.groups = group_list(id.user, id.gid);
    return id;
}

void drop(const Identity& id)
{
    // Nothing a worker could ever exec may gain privileges (setuid binaries,
    // file capabilities), whether or not we started as root.
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        throw sys_error("prctl", "PR_SET_NO_NEW_PRIVS");
    if (!id.drop) {
        if (!id.chroot.empty())
            throw std::runtime_error("chroot requires starting as root");
        return;
    }
    if (::setgroups(id.groups.size(), id.groups.data()) != 0)
        throw sys_error("setgroups", id.user);
    if (!id.chroot.empty()) {
        if (::chroot(id.chroot.c_str()) != 0)
            throw sys_error("chroot", id.chroot);
        if (::chdir("/") != 0)
            throw sys_error("chdir", "/");
    }
    if (::setgid(id.gid) != 0)
        throw sys_error("setgid", std::to_string(id.gid));
    if (::setuid(id.uid) != 0)
        throw sys_error("setuid", std::to_string(id.uid));
    if (id.uid != 0 && ::setuid(0) == 0)
        throw std::runtime_error("setuid(0) succeeded after dropping privileges");
}

}  // namespace preforkd::privileges
