// Listen-address parsing and binding on loopback.
#include <criterion/criterion.h>

#include <cstdlib>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "preforkd/listener.hpp"

namespace l = preforkd::listener;

Test(listener, ipv4_host_and_port)
{
    l::ParseResult r = l::parse("127.0.0.1:8080");
    cr_assert(r.address.has_value(), "%s", r.error.c_str());
    cr_assert(r.address->family == l::Family::inet4);
    cr_assert_eq(r.address->port, 8080u);
    cr_assert_str_eq(r.address->canonical.c_str(), "127.0.0.1:8080");
}

Test(listener, star_means_every_ipv4_address)
{
    l::ParseResult r = l::parse("*:80");
    cr_assert(r.address.has_value());
    cr_assert_str_eq(r.address->canonical.c_str(), "0.0.0.0:80");
}

Test(listener, ipv6_in_brackets_is_canonicalised)
{
    l::ParseResult r = l::parse("[0:0::1]:443");
    cr_assert(r.address.has_value(), "%s", r.error.c_str());
    cr_assert(r.address->family == l::Family::inet6);
    cr_assert_str_eq(r.address->canonical.c_str(), "[::1]:443");
}

Test(listener, unix_path)
{
    l::ParseResult r = l::parse("unix:/run/preforkd.sock");
    cr_assert(r.address.has_value());
    cr_assert(r.address->family == l::Family::unix_path);
    cr_assert_str_eq(r.address->path.c_str(), "/run/preforkd.sock");
}

Test(listener, errors_say_what_is_wrong)
{
    struct {
        const char* text;
        const char* error;
    } cases[] = {
        {"8080", "listen address \"8080\": expected host:port, [v6]:port, *:port or unix:/path"},
        {"127.0.0.1:99999", "listen address \"127.0.0.1:99999\": port must be a number between 0 and 65535"},
        {"127.0.0.1:http", "listen address \"127.0.0.1:http\": port must be a number between 0 and 65535"},
        {"localhost:80", "listen address \"localhost:80\": not a numeric IPv4 address (names are not resolved)"},
        {"[::g]:80", "listen address \"[::g]:80\": not a numeric IPv6 address"},
        {":80", "listen address \":80\": missing host (use *:port for every IPv4 address)"},
        {"unix:relative.sock", "listen address \"unix:relative.sock\": unix socket path must be absolute"},
    };
    for (auto& c : cases) {
        l::ParseResult r = l::parse(c.text);
        cr_assert(!r.address.has_value(), "%s parsed", c.text);
        cr_assert_str_eq(r.error.c_str(), c.error);
    }
}

Test(listener, binds_port_zero_and_reports_the_port)
{
    l::Listener s = l::open(*l::parse("127.0.0.1:0").address, {0666});
    cr_assert(s.fd.valid());
    cr_assert_neq(l::bound_port(s.fd.get()), 0u);
}

Test(listener, second_bind_of_a_port_names_the_address)
{
    l::Listener first = l::open(*l::parse("127.0.0.1:0").address, {0666});
    std::string again = "127.0.0.1:" + std::to_string(l::bound_port(first.fd.get()));
    try {
        l::open(*l::parse(again).address, {0666});
        cr_assert_fail("second bind succeeded");
    } catch (const std::system_error& e) {
        std::string expected = "bind(" + again + ") failed: Address already in use";
        cr_assert_str_eq(e.what(), expected.c_str());
    }
}

Test(listener, stale_unix_socket_is_replaced_live_one_is_not)
{
    char dir[] = "/tmp/preforkd-unit-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    std::string path = std::string(dir) + "/s.sock";
    auto addr = *l::parse("unix:" + path).address;
    {
        l::Listener live = l::open(addr, {0660});
        struct stat st;
        cr_assert_eq(stat(path.c_str(), &st), 0);
        cr_assert_eq(st.st_mode & 0777, 0660u);
        cr_assert_throw(l::open(addr, {0660}), std::system_error);
    }
    // The first socket is closed but its file remains: a stale socket.
    l::Listener again = l::open(addr, {0666});
    cr_assert(again.fd.valid());
    unlink(path.c_str());
    rmdir(dir);
}

Test(listener, unix_access_resolves_names_and_refuses_unknown_ones)
{
    l::UnixAccess keep = l::unix_access(0660, "", "");
    cr_assert_eq(keep.mode, 0660);
    cr_assert_eq(keep.owner, uid_t(-1));
    cr_assert_eq(keep.group, gid_t(-1));
    l::UnixAccess root = l::unix_access(0600, "root", "root");
    cr_assert_eq(root.owner, uid_t(0));
    cr_assert_eq(root.group, gid_t(0));
    try {
        l::unix_access(0660, "no-such-user-x", "");
        cr_assert_fail("an unknown user was accepted");
    } catch (const std::runtime_error& e) {
        cr_assert_str_eq(e.what(), "unix_owner \"no-such-user-x\": no such user");
    }
    cr_assert_throw(l::unix_access(0660, "", "no-such-group-x"), std::runtime_error);
}
