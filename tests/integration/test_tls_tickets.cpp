// test_tls_tickets.cpp - session resumption as a client sees it, with
// `openssl s_client -sess_out` / `-sess_in` ("Reused" or "New" in its
// output): a ticket resumes on another worker of the pool and after a
// reload, a resumed TLS 1.3 connection brings a fresh ticket that resumes
// again, a ticket still resumes one rotation later and no longer two
// rotations later, and resumes on a second server given the same ticket_key_file.
// A reload rolled back leaves the running keys in use, workers map the
// keys read-only, and -t names a bad key file with the setting's file:line.
// Also a TLS listener behind the PROXY protocol: the header, then the
// handshake on the same connection.  Certificates are made at test time.
#include <criterion/criterion.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <string>

#include "harness.hpp"
#include "http_helpers.hpp"

using namespace itest;
using namespace itest::http_suite;

TestSuite(tls_tickets, .init = setup, .fini = cleanup, .timeout = 120);

namespace {

// A self-signed certificate for a.test in `dir` (cert.pem, key.pem).
void make_certificate(const std::string& dir)
{
    RunResult r = run({"/usr/bin/env", "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                       "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", dir + "/key.pem",
                       "-out", dir + "/cert.pem", "-days", "2", "-subj", "/CN=a.test",
                       "-addext", "subjectAltName=DNS:a.test"},
                      dir, 30s);
    cr_assert(r.status == 0, "openssl req failed: %s", r.err.c_str());
    ::chmod((dir + "/key.pem").c_str(), 0600);
}

// One TLS site a.test on one TLS listener (with `listen_options` added to
// its entry) and `tls_group` as the global tls group.
Daemon tls_daemon(Options o, const std::string& tls_group, const std::string& listen_options = "")
{
    Daemon d = Daemon::prepare(o);
    make_certificate(d.dir);
    o.extra += "sites = ( { names = [ \"a.test\" ]; root = \"www\";\n"
               "  tls = { certificate = \"" + d.path("cert.pem") + "\"; key = \"" +
               d.path("key.pem") + "\"; }; } );\n"
               "tls = { " + tls_group + " };\n";
    std::string text = config_text(o);
    std::string plain = "listen = ( \"127.0.0.1:0\" );";
    text.replace(text.find(plain), plain.size(),
                 "listen = ( { address = \"127.0.0.1:0\"; tls = true; " + listen_options + " } );");
    d.write_config_text(text);
    start(d);
    return d;
}

struct Session {
    bool served = false;    // the file came back
    bool reused = false;    // "Reused," (else "New,")
    std::string output;
};

// One HTTPS request with s_client; `flags` are -sess_out FILE or -sess_in FILE.
Session s_client(const Daemon& d, const std::string& flags)
{
    std::string cmd =
        "printf 'GET /x.txt HTTP/1.1\\r\\nHost: a.test\\r\\nConnection: close\\r\\n\\r\\n' | "
        "openssl s_client -connect 127.0.0.1:" + std::to_string(d.port) +
        " -servername a.test -ign_eof " + flags + " 2>&1";
    RunResult r = run({"/bin/sh", "-c", cmd}, d.dir, 30s);
    Session s;
    s.output = r.out + r.err;
    s.served = s.output.find("hello from preforkd") != std::string::npos;
    s.reused = s.output.find("\nReused, ") != std::string::npos;
    return s;
}

Session first_session(const Daemon& d)
{
    Session s = s_client(d, "-sess_out " + d.path("session.pem"));
    D_ASSERT(d, s.served && !s.reused, "the first connection: %s", s.output.c_str());
    return s;
}

Session resume(const Daemon& d)
{
    Session s = s_client(d, "-sess_in " + d.path("session.pem"));
    D_ASSERT(d, s.served, "a resuming connection was not served: %s", s.output.c_str());
    return s;
}

}  // namespace

// max_requests = 1: every worker serves one connection and exits, so the
// second connection is necessarily served by another worker than the first.
Test(tls_tickets, a_ticket_resumes_on_another_worker_and_after_a_reload) {
    Daemon d = tls_daemon(Options{.start = 2, .min_spare = 1, .max_spare = 3, .max = 4,
                                  .max_requests = 1},
                          "");
    first_session(d);
    Session again = resume(d);
    D_ASSERT(d, again.reused, "not resumed on another worker: %s", again.output.c_str());
    D_ASSERT(d, d.signal(SIGHUP), "kill -HUP");
    D_ASSERT(d, d.wait_log("ready: generation 2", 30s).has_value(), "the reload did not finish");
    Session after = resume(d);
    D_ASSERT(d, after.reused, "not resumed after a reload: %s", after.output.c_str());
    NO_SANITIZER_REPORTS();
}

// TLS 1.3 clients use a ticket once; a resumed connection must bring a
// fresh ticket, or the client's next connection is a full handshake (every
// other connection of a client that reconnects).  Three in a row resume.
Test(tls_tickets, a_resumed_tls13_connection_brings_a_ticket_that_resumes_again) {
    Daemon d = tls_daemon(Options{.start = 2, .min_spare = 1, .max_spare = 3, .max = 4}, "");
    first_session(d);
    for (int i = 1; i <= 3; ++i) {
        std::string in = d.path(i == 1 ? "session.pem" : "session" + std::to_string(i) + ".pem");
        std::string out = d.path("session" + std::to_string(i + 1) + ".pem");
        Session s = s_client(d, "-sess_in " + in + " -sess_out " + out);
        D_ASSERT(d, s.served && s.reused, "connection %d after the first was not resumed: %s",
                 i, s.output.c_str());
        D_ASSERT(d, s.output.find("TLSv1.3") != std::string::npos, "not TLS 1.3: %s",
                 s.output.c_str());
        D_ASSERT(d, ::access(out.c_str(), R_OK) == 0,
                 "resumed connection %d brought no new ticket (no %s)", i, out.c_str());
    }
    NO_SANITIZER_REPORTS();
}

// An in-place upgrade hands the key block to the new image: a ticket made
// before it resumes on the new image's workers (the old ones retired).
Test(tls_tickets, a_ticket_resumes_after_an_in_place_upgrade) {
    Daemon d = tls_daemon(Options{.start = 2, .min_spare = 1, .max_spare = 3, .max = 4}, "");
    pid_t master = d.pid;
    first_session(d);
    RunResult r = run({daemon_binary(), "-s", "upgrade", "-p", d.pid_file}, d.dir, 90s);
    D_ASSERT(d, r.status == 0, "-s upgrade exited %d: %s%s", r.status, r.out.c_str(), r.err.c_str());
    D_ASSERT(d, d.wait_log("reload: generation 1 retired", 60s).has_value(),
             "the workers of the old image were never retired");
    D_ASSERT(d, !is_gone(master) && std::stoi(read_file(d.pid_file)) == master,
             "the master's pid changed");
    Session after = resume(d);
    D_ASSERT(d, after.reused, "not resumed after the upgrade: %s", after.output.c_str());
    NO_SANITIZER_REPORTS();
}

// Rotations are counted in the log ("keys rotated"), before and after each
// client run; a run that a rotation overlapped says nothing and is done
// again, so no bound on the machine's speed is assumed.
Test(tls_tickets, a_ticket_outlives_one_rotation_not_two) {
    Daemon d = tls_daemon(Options{}, "ticket_rotation = 3;");
    const std::string rotated = "session tickets: keys rotated";
    bool seen_one = false, seen_two = false;
    for (int attempt = 0; attempt < 10 && !(seen_one && seen_two); ++attempt) {
        std::size_t issued_at = d.count_log(rotated);
        first_session(d);
        if (d.count_log(rotated) != issued_at)
            continue;
        for (std::size_t age = 1; age <= 2; ++age) {
            bool waited = wait_until([&] { return d.count_log(rotated) >= issued_at + age; }, 30s);
            D_ASSERT(d, waited, "no key rotation logged within 30 s of a 3 s period");
            std::size_t before = d.count_log(rotated);
            Session s = resume(d);
            if (before != issued_at + age || d.count_log(rotated) != before)
                break;   // a rotation overlapped the run: try again
            if (age == 1) {
                D_ASSERT(d, s.reused, "one rotation old: not resumed: %s", s.output.c_str());
                seen_one = true;
            } else {
                D_ASSERT(d, !s.reused, "two rotations old: resumed: %s", s.output.c_str());
                seen_two = true;
            }
        }
    }
    D_ASSERT(d, seen_one && seen_two, "no run between rotations in 10 attempts (%d, %d)",
             int(seen_one), int(seen_two));
    NO_SANITIZER_REPORTS();
}

// Two servers given the same key file: a ticket from one resumes on the
// other, as behind a load balancer.
Test(tls_tickets, servers_sharing_a_key_file_resume_each_others_tickets) {
    std::string keys_dir = make_tempdir();
    RunResult r = run({"/bin/sh", "-c", "umask 077; openssl rand 80 > " + keys_dir + "/ticket.key"},
                      keys_dir);
    cr_assert(r.status == 0, "openssl rand: %s", r.err.c_str());
    std::string group = "ticket_key_file = \"" + keys_dir + "/ticket.key\";";
    Daemon a = tls_daemon(Options{}, group);
    Daemon b = tls_daemon(Options{}, group);
    D_ASSERT(a, a.wait_log("1 key(s) from ticket_key_file").has_value(), "the key file was not read");
    first_session(a);
    Session s = s_client(b, "-sess_in " + a.path("session.pem"));
    D_ASSERT(b, s.served && s.reused, "a ticket from the other server: %s", s.output.c_str());
    NO_SANITIZER_REPORTS();
}

// The key file is read again on every reload: a fleet prepends a new key
// (old tickets still resume), then drops the old one (they no longer do); a
// file of the wrong size rejects the reload and the running keys stay.
Test(tls_tickets, the_key_file_is_read_again_on_reload) {
    std::string keys_dir = make_tempdir();
    std::string key_a(80, 'a'), key_b(80, 'b');
    std::string file = keys_dir + "/ticket.key";
    write_file(file, key_a, 0600);
    Daemon d = tls_daemon(Options{}, "ticket_key_file = \"" + file + "\";");
    first_session(d);
    auto reload_to = [&](const std::string& keys, const std::string& outcome) {
        std::size_t before = d.count_log(outcome);
        write_file(file, keys, 0600);
        D_ASSERT(d, d.signal(SIGHUP), "kill -HUP");
        D_ASSERT(d, wait_until([&] { return d.count_log(outcome) > before; }, 30s),
                 "no '%s' after the reload", outcome.c_str());
    };
    reload_to(key_b + key_a, "ready: generation 2");
    Session s = resume(d);
    D_ASSERT(d, s.reused, "the old key, second in the file, no longer decrypts: %s", s.output.c_str());
    reload_to(std::string(81, 'x'), "reload failed");
    std::size_t line = 0;
    std::vector<std::string> conf = lines_of(read_file(d.conf));
    while (line < conf.size() && conf[line].find("ticket_key_file") == std::string::npos)
        ++line;
    std::string where = d.conf + ":" + std::to_string(line + 1) + ": tls.ticket_key_file";
    D_ASSERT(d, d.count_log(where) == 1, "the rejected reload does not say '%s'", where.c_str());
    s = resume(d);
    D_ASSERT(d, s.reused, "a rejected key file changed the keys: %s", s.output.c_str());
    reload_to(key_b, "ready: generation 3");
    s = resume(d);
    D_ASSERT(d, !s.reused, "a ticket of a key no longer in the file resumed: %s", s.output.c_str());
    NO_SANITIZER_REPORTS();
}

// A reload that reads a new key file and is then rolled back (its workers
// cannot start: a jail without the root in it, which the check made from
// outside passes) leaves the running keys in use: a ticket of the old key
// still resumes, and one of the new key (made by a second server that uses
// it) does not.
Test(tls_tickets, a_rolled_back_reload_keeps_the_running_keys) {
    std::string keys_dir = make_tempdir();
    std::string old_file = keys_dir + "/old.key", new_file = keys_dir + "/new.key";
    write_file(old_file, std::string(80, 'o'), 0600);
    write_file(new_file, std::string(80, 'n'), 0600);
    Daemon d = tls_daemon(Options{}, "ticket_key_file = \"" + old_file + "\";");
    Daemon other = tls_daemon(Options{}, "ticket_key_file = \"" + new_file + "\";");
    first_session(d);
    first_session(other);
    make_dir(d.path("jail"));
    std::string text = read_file(d.conf);
    text.replace(text.find(old_file), old_file.size(), new_file);
    d.write_config_text(text + "chroot = \"" + d.path("jail") + "\";\n");
    RunResult r = run({daemon_binary(), "-s", "reload", "-c", d.conf}, d.dir, 60s);
    D_ASSERT(d, r.status == 1 && (r.out + r.err).find("rolled back: ") != std::string::npos,
             "-s reload exited %d, want a rollback: '%s' '%s'", r.status, r.out.c_str(), r.err.c_str());
    D_ASSERT(d, d.count_log("1 key(s) from ticket_key_file \"" + new_file) == 1,
             "the reload never read the new key file");
    Session old_ticket = resume(d);
    D_ASSERT(d, old_ticket.reused, "a ticket of the running key no longer resumes after the "
                                   "rollback: %s", old_ticket.output.c_str());
    Session new_ticket = s_client(d, "-sess_in " + other.path("session.pem"));
    D_ASSERT(d, new_ticket.served && !new_ticket.reused,
             "a ticket of the rolled-back reload's key resumed: %s", new_ticket.output.c_str());
    NO_SANITIZER_REPORTS();
}

// The keys are the master's to write: every child of it (the workers, the
// parker, when parking is on) maps the block once, read-only ("r--s" in /proc/PID/maps), where
// the master has its writable mapping beside the read-only one.
Test(tls_tickets, workers_map_the_keys_read_only) {
    Daemon d = tls_daemon(Options{.start = 2, .min_spare = 1, .max_spare = 3, .max = 4}, "");
    first_session(d);   // a worker that has served a handshake
    auto block_lines = [](pid_t pid) {
        std::vector<std::string> out;
        for (const std::string& l : lines_of(read_file("/proc/" + std::to_string(pid) + "/maps")))
            if (l.find("preforkd-ticket-keys") != std::string::npos)
                out.push_back(l);
        return out;
    };
    std::vector<std::string> master = block_lines(d.pid);
    D_ASSERT(d, master.size() == 2, "the master maps the block %zu times", master.size());
    std::vector<pid_t> children = d.workers();
    D_ASSERT(d, !children.empty(), "no worker");
    for (pid_t child : children) {
        std::vector<std::string> lines = block_lines(child);
        std::string seen;
        for (const std::string& l : lines)
            seen += "\n" + l;
        D_ASSERT(d, lines.size() == 1 && lines[0].find(" r--s ") != std::string::npos,
                 "process %d maps the key block as:%s", int(child), seen.c_str());
    }
    NO_SANITIZER_REPORTS();
}

// A key file of the wrong size stops the start with its path and size.
Test(tls_tickets, a_key_file_of_the_wrong_size_is_refused) {
    Daemon d = Daemon::prepare();
    write_file(d.path("ticket.key"), std::string(81, 'k'), 0600);
    Options o;
    o.extra = "tls = { ticket_key_file = \"" + d.path("ticket.key") + "\"; };\n";
    d.write_config(o);
    RunResult r = run({daemon_binary(), "-t", "-c", d.conf}, d.dir);
    D_ASSERT(d, r.status != 0, "-t accepted an 81-byte key file");
    D_ASSERT(d, r.err.find(d.path("ticket.key")) != std::string::npos &&
                    r.err.find("81 bytes") != std::string::npos,
             "-t did not name the file and its size: %s", r.err.c_str());
}

// Every mistake in ticket_key_file is named where the setting is written,
// "file:line:" as any other configuration error: a missing file, one of
// the wrong size, a directory.  The setting sits in an included file here,
// so the position is not just the main file's.
Test(tls_tickets, a_bad_key_file_is_named_with_its_file_and_line) {
    Daemon d = Daemon::prepare();
    write_file(d.path("ticket.key"), std::string(79, 'k'), 0600);
    make_dir(d.path("keys.d"));
    Options o;
    o.extra = "@include \"tls.conf\"\n";
    d.write_config(o);
    struct Case {
        std::string path, reason;
    };
    for (const Case& c : {Case{d.path("missing.key"), "No such file"},
                          Case{d.path("ticket.key"), "79 bytes"},
                          Case{d.path("keys.d"), "not a regular file"}}) {
        write_file(d.path("tls.conf"), "# the keys every server of the fleet shares\n"
                                       "tls = {\n  ticket_rotation = 600;\n"
                                       "  ticket_key_file = \"" + c.path + "\";\n};\n");
        RunResult r = run({daemon_binary(), "-t", "-c", d.conf}, d.dir);
        std::string where = d.path("tls.conf") + ":4: tls.ticket_key_file \"" + c.path + "\": ";
        D_ASSERT(d, r.status != 0, "-t accepted ticket_key_file %s", c.path.c_str());
        D_ASSERT(d, r.err.find(where) != std::string::npos &&
                        r.err.find(c.reason) != std::string::npos,
                 "-t did not say '%s...%s': %s", where.c_str(), c.reason.c_str(), r.err.c_str());
    }
}

// PROXY v1, then TLS on the same connection (what a TCP load balancer in
// front of a TLS listener does); the access log has the carried address.
Test(tls_tickets, a_tls_listener_behind_the_proxy_protocol) {
    Daemon d = tls_daemon(Options{}, "", "proxy_protocol = true;");
    int fd = connect_tcp(d.port);
    D_ASSERT(d, fd >= 0, "connect failed");
    D_ASSERT(d, send_all(fd, "PROXY TCP4 198.51.100.23 127.0.0.1 40000 443\r\n"), "send failed");
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, "a.test");
    D_ASSERT(d, SSL_connect(ssl) == 1, "handshake after the PROXY header failed: %lu",
             ERR_get_error());
    std::string req = "GET /x.txt?behind HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n";
    D_ASSERT(d, SSL_write(ssl, req.data(), int(req.size())) == int(req.size()), "SSL_write");
    std::string got;
    char buf[4096];
    for (int n; (n = SSL_read(ssl, buf, sizeof buf)) > 0;)
        got.append(buf, std::size_t(n));
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    ::close(fd);
    D_ASSERT(d, got.rfind("HTTP/1.1 200", 0) == 0 && got.find("hello from preforkd") != std::string::npos,
             "response: %s", got.c_str());
    std::string line;
    wait_until([&] {
        for (const std::string& l : lines_of(read_file(d.path("access.log"))))
            if (l.find("/x.txt?behind") != std::string::npos)
                return !(line = l).empty();
        return false;
    });
    D_ASSERT(d, line.rfind("198.51.100.23 ", 0) == 0, "access log line: '%s'", line.c_str());
    NO_SANITIZER_REPORTS();
}
