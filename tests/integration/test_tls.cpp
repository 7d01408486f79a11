// test_tls.cpp - HTTPS against the real daemon, with a throwaway CA and
// certificates made at test time (make_certs.sh, the openssl command): curl
// with --cacert for each SNI name, the default certificate without SNI, ALPN,
// plain HTTP sent to the TLS port, 421 when SNI and Host disagree, a large
// file byte for byte, files and a range to a slow reader on one keep-alive
// connection, a half ClientHello that must not hold the only worker,
// bad reloads rejected with file:line while the old certificate is still
// served, and -t on a mismatched key and a certificate about to expire.
#include <criterion/criterion.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "harness.hpp"
#include "http_helpers.hpp"

using namespace itest;

TestSuite(tls, .init = setup, .fini = cleanup, .timeout = 60);

namespace {

struct TlsDaemon {
    Daemon d;
    int tls_port = -1;
};

std::string site(const std::string& name, const std::string& cert, bool is_default = false)
{
    return "  { names = [ \"" + name + ".test\" ]; root = \"www-" + name + "\";" +
           (is_default ? " default = true;" : "") + "\n    tls = { certificate = \"" + cert +
           ".pem\"; key = \"" + cert + ".key\"; }; }";
}

// The configuration: a plain listener (the harness learns its port), a TLS
// one on `tls_port`, sites a (the default) and b with their certificates.
std::string config_for(int tls_port, const std::string& a_cert = "a", const std::string& extra = "",
                       int workers = 2)
{
    return "pid_file = \"preforkd.pid\";\n"
           "listen = ( \"127.0.0.1:0\", { address = \"127.0.0.1:" + std::to_string(tls_port) +
           "\"; tls = true; } );\n"
           "workers = { start = " + std::to_string(workers) + "; min_spare = 0; max_spare = " +
           std::to_string(workers) + "; max = " + std::to_string(workers) + "; };\n"
           "http = { root = \"www\"; };\n"
           "log = { level = \"info\"; access_log = \"access.log\"; access_format = \"json\"; "
           "access_buffer = 0; };\n" + extra +
           "sites = (\n" + site("a", a_cert, true) + ",\n" + site("b", "b") + "\n);\n";
}

TlsDaemon prepared(const std::string& a_cert = "a", const std::string& extra = "", int workers = 2)
{
    TlsDaemon t;
    t.d = Daemon::prepare();
    RunResult made = run({"/bin/sh", std::string(getenv("PREFORKD_SRCDIR") ? getenv("PREFORKD_SRCDIR") : ".") +
                                    "/tests/integration/make_certs.sh", t.d.dir},
                         t.d.dir, 60s);
    cr_assert_eq(made.status, 0, "make_certs.sh failed: %s", made.err.c_str());
    for (const char* name : {"a", "b"}) {
        make_dir(t.d.path(std::string("www-") + name));
        write_file(t.d.path(std::string("www-") + name + "/index.html"),
                   std::string("site ") + name + "\n");
    }
    t.tls_port = free_port();
    t.d.write_config_text(config_for(t.tls_port, a_cert, extra, workers));
    return t;
}

TlsDaemon started(const std::string& a_cert = "a", const std::string& extra = "", int workers = 2)
{
    TlsDaemon t = prepared(a_cert, extra, workers);
    D_ASSERT(t.d, t.d.start(), "the daemon did not start");
    return t;
}

std::string resolve(const TlsDaemon& t, const std::string& name)
{
    return name + ":" + std::to_string(t.tls_port) + ":127.0.0.1";
}

std::string url(const TlsDaemon& t, const std::string& name, const std::string& path = "/")
{
    return "https://" + name + ":" + std::to_string(t.tls_port) + path;
}

// curl over TLS, verifying against the test CA: the body, or the error.
RunResult https(const TlsDaemon& t, const std::string& name, std::vector<std::string> more = {})
{
    std::vector<std::string> args = {"/usr/bin/curl", "-sS", "--max-time", "10", "--cacert", t.d.path("ca.pem"),
                                     "--resolve", resolve(t, name)};
    args.insert(args.end(), more.begin(), more.end());
    if (more.empty() || more.back().rfind("https://", 0) != 0)
        args.push_back(url(t, name));
    return run(args, t.d.dir, 20s);
}

// openssl s_client's account of a handshake; `servername` "" sends no SNI.
std::string s_client(const TlsDaemon& t, const std::string& servername)
{
    std::vector<std::string> args = {"/bin/sh", "-c",
        "echo | openssl s_client -connect 127.0.0.1:" + std::to_string(t.tls_port) +
        " -alpn http/1.1 " + (servername.empty() ? "-noservername" : "-servername " + servername) +
        " 2>&1"};
    return run(args, t.d.dir, 20s).out;
}

// The certificate's serial as s_client saw it, via openssl x509.
std::string served_serial(const TlsDaemon& t, const std::string& servername)
{
    std::vector<std::string> args = {"/bin/sh", "-c",
        "echo | openssl s_client -connect 127.0.0.1:" + std::to_string(t.tls_port) +
        " -servername " + servername + " 2>/dev/null | openssl x509 -noout -serial"};
    return run(args, t.d.dir, 20s).out;
}

std::string serial_of(const TlsDaemon& t, const std::string& pem)
{
    return run({"/usr/bin/openssl", "x509", "-noout", "-serial", "-in", t.d.path(pem)}, t.d.dir).out;
}

}  // namespace

Test(tls, each_sni_name_gets_its_sites_certificate_and_content)
{
    TlsDaemon t = started();
    for (const char* name : {"a", "b"}) {
        RunResult r = https(t, std::string(name) + ".test", {"-w", " %{http_code} %{http_version}"});
        D_ASSERT(t.d, r.status == 0, "curl %s.test: %s", name, r.err.c_str());
        D_ASSERT(t.d, r.out == std::string("site ") + name + "\n 200 1.1", "%s.test answered '%s'",
                 name, r.out.c_str());
    }
    // The json access log says how the request came.
    D_ASSERT(t.d, wait_until([&] { return read_file(t.d.path("access.log")).find("\"tls_protocol\":\"TLSv1.3\"") != std::string::npos; }),
             "no tls_protocol in the access log:\n%s", read_file(t.d.path("access.log")).c_str());
    std::string log = read_file(t.d.path("access.log"));
    D_ASSERT(t.d, log.find("\"tls_resumed\":false") != std::string::npos, "log:\n%s", log.c_str());
    NO_SANITIZER_REPORTS();
}

Test(tls, no_sni_gets_the_default_sites_certificate_and_alpn_is_http_1_1)
{
    TlsDaemon t = started();
    std::string out = s_client(t, "");
    D_ASSERT(t.d, out.find("CN = a.test") != std::string::npos, "s_client without SNI:\n%s", out.c_str());
    D_ASSERT(t.d, out.find("ALPN protocol: http/1.1") != std::string::npos, "s_client:\n%s", out.c_str());
    out = s_client(t, "b.test");
    D_ASSERT(t.d, out.find("CN = b.test") != std::string::npos, "s_client with b.test:\n%s", out.c_str());
    out = s_client(t, "unknown.test");
    D_ASSERT(t.d, out.find("CN = a.test") != std::string::npos, "s_client with an unknown name:\n%s",
             out.c_str());
    NO_SANITIZER_REPORTS();
}

Test(tls, plain_http_to_the_tls_port_gets_400_in_clear_and_a_close)
{
    TlsDaemon t = started();
    int fd = connect_tcp(t.tls_port);
    cr_assert(fd >= 0);
    cr_assert(send_all(fd, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"));
    std::string buffer;
    Response r = read_response(fd, buffer);
    D_ASSERT(t.d, r.ok && r.status == 400, "plain HTTP on the TLS port: %s '%s'", r.error.c_str(),
             r.status_line.c_str());
    D_ASSERT(t.d, r.body == "plain HTTP request sent to HTTPS port\n", "body '%s'", r.body.c_str());
    auto more = recv_some(fd, 10s);
    D_ASSERT(t.d, more && more->empty(), "the connection was not closed after the 400");
    close(fd);
    // The worker lived through it, and through a malformed hello.
    fd = connect_tcp(t.tls_port);
    cr_assert(send_all(fd, std::string("\x16\x03\x01\x00\x08\x01\x00\x00\x04garbage!", 13)));
    auto end = recv_some(fd, 10s);
    D_ASSERT(t.d, end.has_value(), "a malformed hello was neither answered nor closed");
    close(fd);
    RunResult ok = https(t, "a.test");
    D_ASSERT(t.d, ok.status == 0 && ok.out == "site a\n", "after bad input: %s", ok.err.c_str());
    D_ASSERT(t.d, t.d.count_log("killed") == 0 && t.d.count_log("exited on signal") == 0,
             "a worker died");
    NO_SANITIZER_REPORTS();
}

Test(tls, a_host_of_another_site_than_sni_chose_gets_421)
{
    TlsDaemon t = started();
    RunResult r = https(t, "a.test", {"-H", "Host: b.test", "-o", "/dev/null", "-w", "%{http_code}",
                                      url(t, "a.test")});
    D_ASSERT(t.d, r.status == 0 && r.out == "421", "SNI a.test, Host b.test: '%s' %s", r.out.c_str(),
             r.err.c_str());
    r = https(t, "a.test", {"-H", "Host: a.test", "-o", "/dev/null", "-w", "%{http_code}", url(t, "a.test")});
    D_ASSERT(t.d, r.out == "200", "SNI and Host a.test: '%s'", r.out.c_str());
    NO_SANITIZER_REPORTS();
}

Test(tls, a_large_file_arrives_byte_for_byte)
{
    TlsDaemon t = started();
    RunResult made = run({"/bin/sh", "-c", "head -c 5000003 /dev/urandom > " + t.d.path("www-a/big.bin")}, t.d.dir);
    cr_assert_eq(made.status, 0);
    RunResult r = https(t, "a.test", {"-o", t.d.path("big.out"), url(t, "a.test", "/big.bin")});
    D_ASSERT(t.d, r.status == 0, "curl: %s", r.err.c_str());
    RunResult same = run({"/usr/bin/cmp", t.d.path("www-a/big.bin"), t.d.path("big.out")}, t.d.dir);
    D_ASSERT(t.d, same.status == 0, "the file came back different: %s", same.out.c_str());
    D_ASSERT(t.d, t.d.log_text().find("TLS file bodies: ") != std::string::npos,
             "the start did not say which body path TLS takes");
    NO_SANITIZER_REPORTS();
}

// File bodies leave in sends of four records from a write buffer; a client
// that reads slowly makes those sends wait (EAGAIN) part-way, and the
// answers after it on the same connection, from a file or from memory,
// must still follow the whole body in order.
Test(tls, a_slow_reader_gets_files_whole_and_in_order_on_one_connection)
{
    TlsDaemon t = started();
    RunResult made = run({"/bin/sh", "-c", "head -c 3000017 /dev/urandom > " + t.d.path("www-a/big.bin") +
                                               " && tail -c 2930000 " + t.d.path("www-a/big.bin") + " > " +
                                               t.d.path("tail.bin")},
                         t.d.dir);
    cr_assert_eq(made.status, 0);
    RunResult r = https(t, "a.test",
                        {"--limit-rate", "3M", "-w", "%{http_code} %{num_connects}\n",
                         "-o", t.d.path("one.out"), url(t, "a.test", "/big.bin"),
                         "-o", t.d.path("two.out"), url(t, "a.test", "/index.html"),
                         "-o", t.d.path("three.out"), url(t, "a.test", "/big.bin")});
    D_ASSERT(t.d, r.status == 0, "curl: %s", r.err.c_str());
    D_ASSERT(t.d, r.out == "200 1\n200 0\n200 0\n", "codes and new connections: '%s'", r.out.c_str());
    for (const char* out : {"one.out", "three.out"}) {
        RunResult same = run({"/usr/bin/cmp", t.d.path("www-a/big.bin"), t.d.path(out)}, t.d.dir);
        D_ASSERT(t.d, same.status == 0, "%s came back different: %s", out, same.out.c_str());
    }
    D_ASSERT(t.d, read_file(t.d.path("two.out")) == "site a\n", "index.html between the two");
    // A range that starts and ends off the four-record boundaries.
    r = https(t, "a.test", {"-r", "70017-", "-w", "%{http_code}", "-o", t.d.path("range.out"),
                            url(t, "a.test", "/big.bin")});
    D_ASSERT(t.d, r.status == 0 && r.out == "206", "range: %s %s", r.out.c_str(), r.err.c_str());
    RunResult same = run({"/usr/bin/cmp", t.d.path("tail.bin"), t.d.path("range.out")}, t.d.dir);
    D_ASSERT(t.d, same.status == 0, "the range came back different: %s", same.out.c_str());
    NO_SANITIZER_REPORTS();
}

Test(tls, a_half_client_hello_does_not_hold_the_only_worker)
{
    TlsDaemon t = started("a", "tls = { handshake_timeout = 2; };\n", 1);
    int slow = connect_tcp(t.tls_port);
    cr_assert(slow >= 0);
    // A handshake record announcing 512 bytes, of which 20 come.
    std::string half("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11);
    half += std::string(9, 'x');
    cr_assert(send_all(slow, half));
    RunResult r = https(t, "b.test");
    D_ASSERT(t.d, r.status == 0 && r.out == "site b\n", "with a half hello open: %s", r.err.c_str());
    // And the half hello is closed once handshake_timeout has passed.
    auto end = recv_some(slow, 15s);
    D_ASSERT(t.d, end && end->empty(), "the half hello was not closed");
    close(slow);
    NO_SANITIZER_REPORTS();
}

Test(tls, a_bad_reload_is_rejected_and_the_old_certificate_still_served)
{
    TlsDaemon t = started();
    std::string old_serial = serial_of(t, "a.pem");
    D_ASSERT(t.d, served_serial(t, "a.test") == old_serial, "not serving a.pem at first");
    // a2.pem with a.key: the key of another certificate.
    std::string text = config_for(t.tls_port, "a2");
    std::size_t at = text.find("a2.key");
    text.replace(at, 6, "a.key");
    t.d.write_config_text(text);
    RunResult r = run({daemon_binary(), "-s", "reload", "-c", t.d.conf}, t.d.dir, 30s);
    D_ASSERT(t.d, r.status == 1, "-s reload with a mismatched key exited %d", r.status);
    // The position is the site's tls group in the file, not in the dump the
    // reload loads.
    std::size_t group = text.rfind("tls", at);
    std::string where = t.d.conf + ":" +
                        std::to_string(1 + std::count(text.begin(), text.begin() + long(group), '\n')) + ":";
    D_ASSERT(t.d, r.err.find(where) != std::string::npos &&
                      r.err.find("does not match the certificate") != std::string::npos,
             "-s reload said: %s", r.err.c_str());
    D_ASSERT(t.d, served_serial(t, "a.test") == old_serial, "the old certificate is not served");
    // A missing file.
    t.d.write_config_text(config_for(t.tls_port, "missing"));
    r = run({daemon_binary(), "-s", "reload", "-c", t.d.conf}, t.d.dir, 30s);
    D_ASSERT(t.d, r.status == 1 && r.err.find("missing.pem") != std::string::npos &&
                      r.err.find("No such file") != std::string::npos,
             "-s reload with a missing file: %d %s", r.status, r.err.c_str());
    D_ASSERT(t.d, served_serial(t, "a.test") == old_serial, "the old certificate is not served");
    // A good renewal is taken.
    t.d.write_config_text(config_for(t.tls_port, "a2"));
    r = run({daemon_binary(), "-s", "reload", "-c", t.d.conf}, t.d.dir, 30s);
    D_ASSERT(t.d, r.status == 0, "-s reload with a2: %s", r.err.c_str());
    std::string new_serial = serial_of(t, "a2.pem");
    D_ASSERT(t.d, wait_until([&] { return served_serial(t, "a.test") == new_serial; }),
             "the renewed certificate is not served");
    // A certificate about to expire is taken, with a warning that names the
    // site's tls group in the file.
    text = config_for(t.tls_port, "soon");
    t.d.write_config_text(text);
    r = run({daemon_binary(), "-s", "reload", "-c", t.d.conf}, t.d.dir, 30s);
    D_ASSERT(t.d, r.status == 0, "-s reload with soon.pem: %s", r.err.c_str());
    group = text.rfind("tls", text.find("soon.pem"));
    where = t.d.conf + ":" + std::to_string(1 + std::count(text.begin(), text.begin() + long(group), '\n')) +
            ": the certificate " + t.d.path("soon.pem") + " expires on";
    D_ASSERT(t.d, wait_until([&] { return t.d.log_text().find(where) != std::string::npos; }),
             "no warning naming %s", where.c_str());
    NO_SANITIZER_REPORTS();
}

Test(tls, dash_t_catches_a_mismatched_key_and_warns_about_expiry)
{
    TlsDaemon t = prepared();
    std::string text = config_for(t.tls_port);
    std::size_t at = text.find("b.key");
    text.replace(at, 5, "a.key");
    t.d.write_config_text(text);
    RunResult r = run({daemon_binary(), "-t", "-c", t.d.conf}, t.d.dir);
    cr_assert_eq(r.status, 1, "-t accepted a mismatched key: %s", r.out.c_str());
    cr_assert(r.err.find(t.d.conf + ":") != std::string::npos &&
                  r.err.find("a.key does not match the certificate") != std::string::npos,
              "-t said: %s", r.err.c_str());
    t.d.write_config_text(config_for(t.tls_port, "soon"));
    r = run({daemon_binary(), "-t", "-c", t.d.conf}, t.d.dir);
    cr_assert_eq(r.status, 0, "-t refused: %s", r.err.c_str());
    cr_assert(r.err.find("warning: ") != std::string::npos &&
                  r.err.find("soon.pem expires on") != std::string::npos &&
                  r.err.find("within 14 days") != std::string::npos,
              "-t said: %s", r.err.c_str());
    r = run({daemon_binary(), "-T", "-c", t.d.conf}, t.d.dir);
    cr_assert(r.out.find("# certificate " + t.d.path("b.pem") + ": subject /CN=b.test; names b.test; expires ") !=
                  std::string::npos,
              "-T printed:\n%s", r.out.c_str());
}
