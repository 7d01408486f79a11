// privileges.hpp - the one place where workers give up root.
//
// The master resolves the user, group and supplementary groups before
// forking (the names need /etc/passwd and /etc/group, which a chroot hides);
// each worker then chroots if asked, sets its groups, gid and uid, and
// checks that root cannot be regained.
#pragma once

#include <string>
#include <sys/types.h>
#include <vector>

#include "preforkd/config.hpp"

namespace preforkd::privileges {

struct Identity {
    bool drop = false;        // false when not started as root
    std::string user;
    uid_t uid = 0;
    gid_t gid = 0;
    std::vector<gid_t> groups;   // supplementary, resolved by the master
    std::string chroot;
};

// Started as root: the configured user/group, nobody/nogroup when none is
// set (with a notice), root only if `user = "root"` is written.  Not root:
// no change.  Throws std::runtime_error for unknown names.
Identity resolve(const config::Config& config);

// In a worker: setgroups, chroot, setgid, setuid, verify.  Throws
// std::system_error naming the call that failed.
void drop(const Identity& identity);

}  // namespace preforkd::privileges
