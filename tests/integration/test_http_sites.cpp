// test_http_sites.cpp - the request path through sites and rules, as seen
// with the one default site every configuration without `sites` has
// (suite `http_sites`): strict Host validation (400 and a closed
// connection), hidden files answered 404 while /.well-known/ stays open,
// and refusals explained in the diagnostic log - a root the workers cannot
// read, a symlink out of the root, a hidden file.
#include <criterion/criterion.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "harness.hpp"
#include "http_helpers.hpp"

using namespace itest;
using namespace itest::http_suite;

TestSuite(http_sites, .init = setup, .fini = cleanup, .timeout = 30);

namespace {

constexpr Duration kCloseWait = 3s;

Response get(int port, const std::string& target, const std::string& host = "localhost")
{
    return exchange_raw(port, "GET " + target + " HTTP/1.1\r\nHost: " + host +
                            "\r\nConnection: close\r\n\r\n", false, kCloseWait).r;
}

}  // namespace

Test(http_sites, malformed_host_gets_400_and_a_closed_connection) {
    Daemon d = prepared();
    start(d);
    const std::string next = "GET /x.txt HTTP/1.1\r\nHost: localhost\r\n\r\n";
    for (const char* host : {"localhost:80x", "[4712::abcd::]", "4714::abcd:8001", ":80:80", ""}) {
        for (bool absolute : {false, true}) {
            std::string req = absolute ? "GET http://" + std::string(host) +
                                             "/x.txt HTTP/1.1\r\nHost: localhost\r\n\r\n"
                                       : "GET /x.txt HTTP/1.1\r\nHost: " + std::string(host) +
                                             "\r\n\r\n";
            Exchange x = exchange_raw(d.port, req + next, false, kCloseWait);
            D_ASSERT(d, x.r.ok && x.r.status == 400, "%s \"%s\": '%s' %s",
                     absolute ? "authority" : "Host", host, x.r.status_line.c_str(),
                     x.r.error.c_str());
            D_ASSERT(d, x.r.header("connection") == "close" && x.closed && x.after.empty(),
                     "%s \"%s\": the connection stayed open or answered more",
                     absolute ? "authority" : "Host", host);
        }
    }
    // What clients really send is served: case, a port, a trailing dot, IP literals.
    for (const char* host : {"LOCALHOST", "localhost:8080", "localhost.", "127.0.0.1:1", "[::1]:80"}) {
        Response r = get(d.port, "/x.txt", host);
        D_ASSERT(d, r.ok && r.status == 200 && r.body == "hello from preforkd\n",
                 "Host \"%s\": '%s' %s", host, r.status_line.c_str(), r.error.c_str());
    }
    NO_SANITIZER_REPORTS();
}

Test(http_sites, hidden_files_are_404_and_well_known_is_open) {
    Daemon d = prepared();
    make_dir(d.path("www/.git"));
    write_file(d.path("www/.git/config"), "[remote] url = secret\n");
    write_file(d.path("www/.htpasswd"), "admin:secret\n");
    make_dir(d.path("www/sub"));
    write_file(d.path("www/sub/.env"), "KEY=secret\n");
    make_dir(d.path("www/.well-known"));
    make_dir(d.path("www/.well-known/acme-challenge"));
    write_file(d.path("www/.well-known/acme-challenge/tok"), "proof\n");
    start(d);
    for (const char* path : {"/.git/config", "/.htpasswd", "/sub/.env", "/%2egit/config",
                             "/x/../.git/config", "/.git/"}) {
        Response r = get(d.port, path);
        D_ASSERT(d, r.ok && r.status == 404, "GET %s: '%s' %s", path, r.status_line.c_str(),
                 r.error.c_str());
        D_ASSERT(d, r.body.find("secret") == std::string::npos, "GET %s leaked the file", path);
    }
    Response acme = get(d.port, "/.well-known/acme-challenge/tok");
    D_ASSERT(d, acme.ok && acme.status == 200 && acme.body == "proof\n", "ACME: '%s'",
             acme.status_line.c_str());
    D_ASSERT(d, d.wait_log("hidden path /.git/config").has_value(),
             "the hidden-file 404 is not explained in the log");
    NO_SANITIZER_REPORTS();
}

Test(http_sites, a_root_the_workers_cannot_read_is_explained_in_the_log) {
    Options o;
    bool as_root = geteuid() == 0;
    if (as_root) {
        if (!getpwnam("nobody") || !getgrnam("nogroup")) cr_skip("no nobody/nogroup on this system");
        o.extra = "user = \"nobody\";\ngroup = \"nogroup\";\n";
    }
    Daemon d = prepared("", o);
    // The workers (nobody, or this user for mode 000) may reach the root but
    // not look inside it.
    D_ASSERT(d, chmod(d.dir.c_str(), 0755) == 0, "chmod %s", d.dir.c_str());
    D_ASSERT(d, chmod(d.path("www").c_str(), as_root ? 0700 : 0000) == 0, "chmod www");
    start(d);
    Response r = get(d.port, "/x.txt");
    chmod(d.path("www").c_str(), 0755);
    D_ASSERT(d, r.ok && r.status == 403, "GET /x.txt: '%s' %s", r.status_line.c_str(),
             r.error.c_str());
    auto line = d.wait_log("www/x.txt\") failed: Permission denied");
    D_ASSERT(d, line.has_value(), "no reason for the 403 in the log:\n%s", d.log_tail().c_str());
    D_ASSERT(d, line->find("403 for \"GET /x.txt HTTP/1.1\"") != std::string::npos,
             "the reason does not name the request: %s", line->c_str());
    NO_SANITIZER_REPORTS();
}

Test(http_sites, a_symlink_out_of_the_root_is_explained_in_the_log) {
    Daemon d = prepared();
    write_file(d.path("outside.txt"), "outside\n");
    D_ASSERT(d, symlink("../outside.txt", d.path("www/out.txt").c_str()) == 0, "symlink");
    start(d);
    Response r = get(d.port, "/out.txt");
    D_ASSERT(d, r.ok && r.status == 403, "GET /out.txt: '%s'", r.status_line.c_str());
    auto line = d.wait_log("out.txt leads to");
    D_ASSERT(d, line.has_value() && line->find("outside the root") != std::string::npos,
             "no reason for the symlink 403:\n%s", d.log_tail().c_str());
    NO_SANITIZER_REPORTS();
}
