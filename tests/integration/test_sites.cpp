// test_sites.cpp - several sites from one configuration, against the real
// daemon: matching by Host (case, port, trailing dot, wildcard, default, a
// site bound to one listener), the per-path rules (headers, expires, return,
// deny_hidden, allow/deny, error_page, basic auth with bcrypt and yescrypt
// entries made at test time), an include glob, JSON access-log lines read by
// python3's json module, and reloads that add a site or break one.
#include <criterion/criterion.h>
#include <crypt.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "harness.hpp"
#include "http_helpers.hpp"

using namespace itest;
using namespace itest::http_suite;

TestSuite(sites, .init = setup, .fini = cleanup, .timeout = 40);

namespace {

// The harness's daemon (www/ with index.html and x.txt) plus two more roots,
// each saying which site it is, and `sites` appended to its configuration.
Daemon with_sites(const std::string& sites, const Options& o = {})
{
    Daemon d = Daemon::prepare(o);
    for (const char* name : {"a", "b", "w"}) {
        make_dir(d.path(std::string("www-") + name));
        write_file(d.path(std::string("www-") + name + "/index.html"),
                   std::string("site ") + name + "\n");
    }
    Options with = o;
    with.extra += sites;
    d.write_config(with);
    return d;
}

// One request on a fresh connection with the given Host; "Connection: close".
Response get_host(int port, const std::string& host, const std::string& path = "/",
                  const std::string& extra_headers = "")
{
    Response r;
    int fd = connect_tcp(port);
    if (fd < 0) {
        r.error = "connect failed";
        return r;
    }
    std::string req = "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\n" + extra_headers +
                      "Connection: close\r\n\r\n";
    if (!send_all(fd, req)) {
        close(fd);
        r.error = "send failed";
        return r;
    }
    std::string buffer;
    r = read_response(fd, buffer);
    close(fd);
    return r;
}

const std::string kTwoSites =
    "sites = (\n"
    "  { names = [ \"a.test\", \"www.a.test\" ]; root = \"www-a\"; },\n"
    "  { names = [ \"b.test\" ]; root = \"www-b\"; default = true; },\n"
    "  { names = [ \"*.w.test\" ]; root = \"www-w\"; }\n"
    ");\n";

void expect_site(const Daemon& d, const std::string& host, const std::string& site)
{
    Response r = get_host(d.port, host);
    D_ASSERT(d, r.ok && r.status == 200, "Host '%s': %s '%s'", host.c_str(), r.error.c_str(),
             r.status_line.c_str());
    D_ASSERT(d, r.body == "site " + site + "\n", "Host '%s' reached '%s', want site %s",
             host.c_str(), r.body.c_str(), site.c_str());
}

// A crypt(3) hash of `password` in the scheme `prefix` ("$2b$", "$y$").
std::string hash_of(const std::string& prefix, const std::string& password)
{
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    cr_assert(crypt_gensalt_rn(prefix.c_str(), 0, nullptr, 0, setting, sizeof setting),
              "crypt_gensalt_rn(%s) failed", prefix.c_str());
    crypt_data data{};
    const char* h = crypt_r(password.c_str(), setting, &data);
    cr_assert(h && h[0] != '*', "crypt_r(%s) failed", prefix.c_str());
    return h;
}

std::string basic(const std::string& user, const std::string& password)
{
    static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string in = user + ":" + password, out;
    for (size_t i = 0; i < in.size(); i += 3) {
        unsigned n = (unsigned char)in[i] << 16;
        if (i + 1 < in.size()) n |= (unsigned char)in[i + 1] << 8;
        if (i + 2 < in.size()) n |= (unsigned char)in[i + 2];
        out += table[(n >> 18) & 63];
        out += table[(n >> 12) & 63];
        out += i + 1 < in.size() ? table[(n >> 6) & 63] : '=';
        out += i + 2 < in.size() ? table[n & 63] : '=';
    }
    return "Authorization: Basic " + out + "\r\n";
}

}  // namespace

// ---- matching ----------------------------------------------------------------

Test(sites, two_sites_on_one_listener) {
    Daemon d = with_sites(kTwoSites);
    start(d);
    expect_site(d, "a.test", "a");
    expect_site(d, "www.a.test", "a");
    expect_site(d, "b.test", "b");
    NO_SANITIZER_REPORTS();
}

Test(sites, host_case_port_and_trailing_dot_are_normalised) {
    Daemon d = with_sites(kTwoSites);
    start(d);
    expect_site(d, "A.Test", "a");
    expect_site(d, "a.test:" + std::to_string(d.port), "a");
    expect_site(d, "a.test.", "a");
    expect_site(d, "WWW.A.TEST.:80", "a");
    NO_SANITIZER_REPORTS();
}

Test(sites, wildcard_then_default) {
    Daemon d = with_sites(kTwoSites);
    start(d);
    expect_site(d, "x.w.test", "w");
    expect_site(d, "deep.x.w.test", "w");
    expect_site(d, "unknown.example", "b");
    expect_site(d, "127.0.0.1", "b");
    NO_SANITIZER_REPORTS();
}

Test(sites, first_site_is_the_default_without_a_mark) {
    Daemon d = with_sites("sites = ( { names = [ \"a.test\" ]; root = \"www-a\"; },\n"
                          "          { names = [ \"b.test\" ]; root = \"www-b\"; } );\n");
    start(d);
    expect_site(d, "nobody.test", "a");
    NO_SANITIZER_REPORTS();
}

Test(sites, a_site_bound_to_one_listener_answers_only_there) {
    Options o;
    o.listen = {"127.0.0.1:0", "unix:internal.sock"};
    Daemon d = with_sites("sites = ( { names = [ \"a.test\" ]; root = \"www-a\"; },\n"
                          "          { names = [ \"b.test\" ]; root = \"www-b\";\n"
                          "            listen = [ \"unix:internal.sock\" ]; } );\n",
                          o);
    start(d);
    // On TCP, b.test is not served: the default site (a) answers.
    expect_site(d, "b.test", "a");
    int fd = connect_unix(d.path("internal.sock"));
    D_ASSERT(d, fd >= 0, "connect to the unix listener failed");
    D_ASSERT(d, send_all(fd, "GET / HTTP/1.1\r\nHost: b.test\r\nConnection: close\r\n\r\n"),
             "send");
    std::string buffer;
    Response r = read_response(fd, buffer);
    close(fd);
    D_ASSERT(d, r.ok && r.body == "site b\n", "b.test over the unix socket: %s '%s' '%s'",
             r.error.c_str(), r.status_line.c_str(), r.body.c_str());
    NO_SANITIZER_REPORTS();
}

Test(sites, invalid_hosts_get_400_and_a_close) {
    Daemon d = with_sites(kTwoSites);
    start(d);
    for (const char* host : {"localhost:80x", "[4712::abcd::]", "4714::abcd:8001", ":80:80", ""}) {
        Response r = get_host(d.port, host);
        D_ASSERT(d, r.ok && r.status == 400, "Host '%s': %s '%s', want 400", host,
                 r.error.c_str(), r.status_line.c_str());
        D_ASSERT(d, r.header("connection") == "close", "Host '%s': no Connection: close", host);
    }
    NO_SANITIZER_REPORTS();
}

// ---- rules -------------------------------------------------------------------

Test(sites, headers_expires_and_return) {
    Daemon d = with_sites(
        "sites = ( { names = [ \"a.test\" ]; root = \"www-a\";\n"
        "  headers = [ \"Strict-Transport-Security: max-age=63072000\" ];\n"
        "  locations = (\n"
        "    { path = \"/static/\"; expires = \"30d\"; },\n"
        "    { path = \"= /old\"; return = ( 301, \"https://$host$request_uri\" ); },\n"
        "    { path = \"/gone/\"; return = ( 410 ); } ); } );\n");
    make_dir(d.path("www-a/static"));
    write_file(d.path("www-a/static/app.css"), "body{}\n");
    start(d);

    Response r = get_host(d.port, "a.test", "/static/app.css");
    D_ASSERT(d, r.status == 200, "static: '%s'", r.status_line.c_str());
    D_ASSERT(d, r.header("cache-control") == "max-age=2592000", "Cache-Control '%s'",
             r.header("cache-control").c_str());
    D_ASSERT(d, !r.header("expires").empty(), "no Expires");
    D_ASSERT(d, r.header("strict-transport-security") == "max-age=63072000",
             "site header missing on 200: '%s'", r.header("strict-transport-security").c_str());

    r = get_host(d.port, "a.test", "/old?x=1");
    D_ASSERT(d, r.status == 301, "= /old: '%s'", r.status_line.c_str());
    D_ASSERT(d, r.header("location") == "https://a.test/old?x=1", "Location '%s'",
             r.header("location").c_str());

    r = get_host(d.port, "a.test", "/old/more");
    D_ASSERT(d, r.status == 404, "an exact location matched a longer path: '%s'",
             r.status_line.c_str());
    D_ASSERT(d, r.header("strict-transport-security") == "max-age=63072000",
             "site header missing on an error");

    r = get_host(d.port, "a.test", "/gone/page");
    D_ASSERT(d, r.status == 410, "/gone/: '%s'", r.status_line.c_str());
    NO_SANITIZER_REPORTS();
}

Test(sites, hidden_paths_are_404_but_well_known_is_open) {
    Daemon d = with_sites(kTwoSites);
    make_dir(d.path("www-a/.git"));
    write_file(d.path("www-a/.git/config"), "[core]\n");
    write_file(d.path("www-a/.htpasswd"), "u:x\n");
    make_dir(d.path("www-a/.well-known"));
    make_dir(d.path("www-a/.well-known/acme-challenge"));
    write_file(d.path("www-a/.well-known/acme-challenge/token"), "proof\n");
    start(d);
    for (const char* path : {"/.git/config", "/.htpasswd", "/.git/"}) {
        Response r = get_host(d.port, "a.test", path);
        D_ASSERT(d, r.status == 404, "%s: '%s', want 404", path, r.status_line.c_str());
    }
    Response r = get_host(d.port, "a.test", "/.well-known/acme-challenge/token");
    D_ASSERT(d, r.status == 200 && r.body == "proof\n", "ACME token: '%s'", r.status_line.c_str());
    NO_SANITIZER_REPORTS();
}

Test(sites, deny_and_allow_by_address) {
    Daemon d = with_sites(
        "sites = ( { names = [ \"a.test\" ]; root = \"www-a\";\n"
        "  locations = (\n"
        "    { path = \"/private/\"; deny = [ \"127.0.0.0/8\" ]; },\n"
        "    { path = \"/team/\"; allow = [ \"10.0.0.0/8\", \"127.0.0.1/32\" ];\n"
        "      deny = [ \"0.0.0.0/0\", \"::/0\" ]; } ); } );\n");
    make_dir(d.path("www-a/private"));
    write_file(d.path("www-a/private/x"), "secret\n");
    make_dir(d.path("www-a/team"));
    write_file(d.path("www-a/team/x"), "team\n");
    start(d);
    Response r = get_host(d.port, "a.test", "/private/x");
    D_ASSERT(d, r.status == 403, "denied client: '%s'", r.status_line.c_str());
    D_ASSERT(d, r.body.find("secret") == std::string::npos, "the denied file leaked");
    r = get_host(d.port, "a.test", "/team/x");
    D_ASSERT(d, r.status == 200 && r.body == "team\n", "allowed client: '%s'",
             r.status_line.c_str());
    auto reason = d.wait_log("deny", 10s);
    D_ASSERT(d, reason.has_value(), "the 403 from a deny rule was not explained in the log");
    NO_SANITIZER_REPORTS();
}

Test(sites, error_page_keeps_the_status_and_cannot_loop) {
    Daemon d = with_sites(
        "sites = ( { names = [ \"a.test\" ]; root = \"www-a\";\n"
        "  error_page = ( { status = [ 404, 410 ]; page = \"/errors/404.html\"; } );\n"
        "  locations = ( { path = \"/gone/\"; return = ( 410 ); } ); },\n"
        "  { names = [ \"b.test\" ]; root = \"www-b\";\n"
        "  error_page = ( { status = [ 404 ]; page = \"/missing.html\"; } ); } );\n");
    make_dir(d.path("www-a/errors"));
    write_file(d.path("www-a/errors/404.html"), "<p>custom not found</p>\n");
    start(d);
    Response r = get_host(d.port, "a.test", "/nothing-here");
    D_ASSERT(d, r.status == 404, "missing file: '%s'", r.status_line.c_str());
    D_ASSERT(d, r.body == "<p>custom not found</p>\n", "custom page not served: '%s'",
             r.body.c_str());
    r = get_host(d.port, "a.test", "/gone/x");
    D_ASSERT(d, r.status == 410 && r.body == "<p>custom not found</p>\n",
             "410 with the custom page: '%s' '%s'", r.status_line.c_str(), r.body.c_str());
    // b's error page is itself missing: a plain 404, not a loop.
    r = get_host(d.port, "b.test", "/nothing-here");
    D_ASSERT(d, r.ok && r.status == 404, "missing error page: %s '%s'", r.error.c_str(),
             r.status_line.c_str());
    NO_SANITIZER_REPORTS();
}

// ---- basic auth ----------------------------------------------------------------

Test(sites, basic_auth_with_bcrypt_and_yescrypt) {
    Daemon d = with_sites(
        "sites = ( { names = [ \"a.test\" ]; root = \"www-a\";\n"
        "  locations = ( { path = \"/\"; auth_basic = \"Staff\";\n"
        "                  auth_basic_file = \"htpasswd\"; } ); } );\n");
    write_file(d.path("htpasswd"), "alice:" + hash_of("$2b$", "wonder") + "\n" +
                                       "bob:" + hash_of("$y$", "builder") + "\n",
               0600);
    start(d);
    Response r = get_host(d.port, "a.test", "/");
    D_ASSERT(d, r.status == 401, "no credentials: '%s'", r.status_line.c_str());
    D_ASSERT(d, r.header("www-authenticate").find("Basic realm=\"Staff\"") != std::string::npos,
             "WWW-Authenticate '%s'", r.header("www-authenticate").c_str());
    r = get_host(d.port, "a.test", "/", basic("alice", "wonder"));
    D_ASSERT(d, r.status == 200 && r.body == "site a\n", "bcrypt user: '%s'", r.status_line.c_str());
    r = get_host(d.port, "a.test", "/", basic("bob", "builder"));
    D_ASSERT(d, r.status == 200, "yescrypt user: '%s'", r.status_line.c_str());
    r = get_host(d.port, "a.test", "/", basic("bob", "wrong-password-42"));
    D_ASSERT(d, r.status == 401, "wrong password: '%s'", r.status_line.c_str());
    auto line = d.wait_log("bob", 10s);
    D_ASSERT(d, line.has_value(), "the failed login was not logged with its user name");
    D_ASSERT(d, d.log_text().find("wrong-password-42") == std::string::npos,
             "the password reached the log");
    NO_SANITIZER_REPORTS();
}

Test(sites, apr1_password_file_is_refused_at_start) {
    Daemon d = with_sites(
        "sites = ( { names = [ \"a.test\" ]; root = \"www-a\";\n"
        "  auth_basic = \"Staff\"; auth_basic_file = \"htpasswd\"; } );\n");
    write_file(d.path("htpasswd"), "carol:$apr1$abcdefgh$0123456789abcdefghijkl\n", 0600);
    RunResult t = run({daemon_binary(), "-t", "-c", d.conf}, d.dir);
    D_ASSERT(d, t.status == 1, "preforkd -t exited %d with an apr1 file", t.status);
    D_ASSERT(d, t.err.find("htpasswd:1") != std::string::npos, "no file:line in '%s'",
             t.err.c_str());
    D_ASSERT(d, t.err.find("htpasswd -B") != std::string::npos, "no fix named in '%s'",
             t.err.c_str());
    NO_SANITIZER_REPORTS();
}

// ---- include, logs, reloads ------------------------------------------------------

namespace {

// The harness's configuration with `include` of sites-enabled/*.conf.
Daemon with_include(const Options& o = {})
{
    Daemon d = with_sites("include = [ \"sites-enabled/*.conf\" ];\n", o);
    make_dir(d.path("sites-enabled"));
    return d;
}

std::string site_file(const std::string& name, const std::string& root,
                      const std::string& extra = "")
{
    return "sites = ( { names = [ \"" + name + "\" ]; root = \"" + root + "\"; " + extra +
           " } );\n";
}

}  // namespace

Test(sites, an_include_glob_reads_every_site_file) {
    Daemon d = with_include();
    write_file(d.path("sites-enabled/10-a.conf"), site_file("a.test", "www-a"));
    write_file(d.path("sites-enabled/20-b.conf"), site_file("b.test", "www-b", "default = true;"));
    write_file(d.path("sites-enabled/README"), "not a .conf file: never read\n");
    start(d);
    expect_site(d, "a.test", "a");
    expect_site(d, "b.test", "b");
    expect_site(d, "other.test", "b");
    NO_SANITIZER_REPORTS();
}

Test(sites, json_log_lines_parse_with_python) {
    Daemon d = with_sites(
        "sites = ( { names = [ \"a.test\" ]; root = \"www-a\"; access_log = \"a.json\";\n"
        "            access_format = \"json\"; },\n"
        "          { names = [ \"b.test\" ]; root = \"www-b\"; } );\n");
    start(d);
    expect_site(d, "a.test", "a");
    // A quote in the request line must come out escaped, as valid JSON.
    Response r = get_host(d.port, "a.test", "/no\"thing");
    D_ASSERT(d, r.ok && r.status == 404, "request with a quote: %s '%s'", r.error.c_str(),
             r.status_line.c_str());
    expect_site(d, "b.test", "b");
    D_ASSERT(d, d.signal(SIGQUIT), "kill -QUIT failed");
    D_ASSERT(d, wait_exit(d.pid, 20s) == 0, "the daemon did not stop");
    const char* script =
        "import json, sys\n"
        "lines = open(sys.argv[1]).read().splitlines()\n"
        "objs = [json.loads(l) for l in lines]\n"
        "assert len(objs) == 2, objs\n"
        "assert all(o['host'] == 'a.test' for o in objs), objs\n"
        "assert sorted(o['status'] for o in objs) == [200, 404], objs\n"   // workers flush in any order
        "assert all('site' in o and 'bytes' in o and 'request_id' in o for o in objs), objs\n"
        "assert len({o['request_id'] for o in objs}) == 2, objs\n"
        "print('ok')\n";
    write_file(d.path("check.py"), script);
    RunResult py = run({"/usr/bin/python3", d.path("check.py"), d.path("a.json")}, d.dir);
    D_ASSERT(d, py.status == 0 && py.out == "ok\n", "python3 json check failed: %s%s\nfile:\n%s",
             py.out.c_str(), py.err.c_str(), read_file(d.path("a.json")).c_str());
    std::string main_log = read_file(d.path("access.log"));
    D_ASSERT(d, main_log.find("\"GET / HTTP/1.1\" 200") != std::string::npos &&
                    main_log.find("a.test") == std::string::npos,
             "the main log should hold b.test's line only:\n%s", main_log.c_str());
    NO_SANITIZER_REPORTS();
}

Test(sites, a_reload_adds_a_site) {
    Daemon d = with_include();
    write_file(d.path("sites-enabled/a.conf"), site_file("a.test", "www-a", "default = true;"));
    start(d);
    expect_site(d, "b.test", "a");
    write_file(d.path("sites-enabled/b.conf"), site_file("b.test", "www-b"));
    RunResult r = run({daemon_binary(), "-s", "reload", "-c", d.conf}, d.dir, 30s);
    D_ASSERT(d, r.status == 0, "-s reload exited %d: %s", r.status, r.err.c_str());
    D_ASSERT(d, d.wait_log("reload: generation 1 retired").has_value(), "generation 1 never retired");
    expect_site(d, "b.test", "b");
    expect_site(d, "a.test", "a");
    NO_SANITIZER_REPORTS();
}

Test(sites, a_broken_site_file_is_rejected_and_the_old_sites_keep_serving) {
    Daemon d = with_include();
    write_file(d.path("sites-enabled/a.conf"), site_file("a.test", "www-a", "default = true;"));
    write_file(d.path("sites-enabled/b.conf"), site_file("b.test", "www-b"));
    start(d);
    write_file(d.path("sites-enabled/b.conf"),
               site_file("b.test", "www-b", "headers = [ \"Bad Header: x\" ];"));
    RunResult r = run({daemon_binary(), "-s", "reload", "-c", d.conf}, d.dir, 30s);
    D_ASSERT(d, r.status == 1, "-s reload exited %d for a broken site file", r.status);
    D_ASSERT(d, r.err.find("b.conf:1") != std::string::npos, "no file:line in '%s'", r.err.c_str());
    expect_site(d, "a.test", "a");
    expect_site(d, "b.test", "b");
    D_ASSERT(d, d.count_log("generation 2") == 0, "a second generation started");
    NO_SANITIZER_REPORTS();
}

Test(sites, a_chmod_700_root_is_explained_in_the_log) {
    Daemon d = with_sites("sites = ( { names = [ \"a.test\" ]; root = \"www-a\"; } );\n",
                          Options{.level = "info"});
    start(d);
    D_ASSERT(d, chmod(d.path("www-a").c_str(), 0700) == 0, "chmod");
    Response r = get_host(d.port, "a.test", "/index.html");
    D_ASSERT(d, r.status == 403, "a root the workers cannot read: '%s'", r.status_line.c_str());
    auto line = d.wait_log("Permission denied", 10s);
    D_ASSERT(d, line.has_value(), "the 403 was not explained in the log");
    NO_SANITIZER_REPORTS();
}
