// Session tickets shared by workers: two server contexts stand for two
// workers, attached to the same shared keys; handshakes run through memory
// BIO pairs, no network.  A throwaway self-signed certificate is made in
// memory for each test.
#include <criterion/criterion.h>

#include <cerrno>
#include <ctime>
#include <fcntl.h>
#include <string>
#include <vector>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "preforkd/tls/tickets.hpp"

namespace tickets = preforkd::tls::tickets;

namespace {

// Every context and session a test makes, freed by the suite's .fini (a
// failed assertion skips destructors; the sanitizer build checks leaks).
std::vector<SSL_CTX*> g_contexts;
std::vector<SSL_SESSION*> g_sessions;

void release_all()
{
    for (SSL_SESSION* s : g_sessions)
        SSL_SESSION_free(s);
    for (SSL_CTX* c : g_contexts)
        SSL_CTX_free(c);
    g_sessions.clear();
    g_contexts.clear();
}

SSL_CTX* server_context()
{
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
    X509_set_issuer_name(cert, name);
    X509_sign(cert, key, EVP_sha256());
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    g_contexts.push_back(ctx);
    cr_assert(SSL_CTX_use_certificate(ctx, cert) == 1 && SSL_CTX_use_PrivateKey(ctx, key) == 1);
    X509_free(cert);
    EVP_PKEY_free(key);
    tickets::attach(ctx);
    return ctx;
}

SSL_CTX* client_context(int version)
{
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    g_contexts.push_back(ctx);
    SSL_CTX_set_min_proto_version(ctx, version);
    SSL_CTX_set_max_proto_version(ctx, version);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    return ctx;
}

struct Outcome {
    bool reused = false;
    SSL_SESSION* session = nullptr;   // the client's newest session, to offer next time
};

// One connection: handshake, one byte server to client (so that a TLS 1.3
// client reads the tickets sent after the handshake), and the client's
// session afterwards.
Outcome connect(SSL_CTX* client_ctx, SSL_CTX* server_ctx, SSL_SESSION* offer)
{
    SSL* client = SSL_new(client_ctx);
    SSL* server = SSL_new(server_ctx);
    BIO *client_bio = nullptr, *server_bio = nullptr;
    cr_assert(BIO_new_bio_pair(&client_bio, 0, &server_bio, 0) == 1);
    SSL_set_bio(client, client_bio, client_bio);
    SSL_set_bio(server, server_bio, server_bio);
    SSL_set_connect_state(client);
    SSL_set_accept_state(server);
    if (offer)
        SSL_set_session(client, offer);
    bool client_done = false, server_done = false;
    for (int round = 0; round < 100 && !(client_done && server_done); ++round) {
        client_done = client_done || SSL_do_handshake(client) == 1;
        server_done = server_done || SSL_do_handshake(server) == 1;
    }
    cr_assert(client_done && server_done, "the handshake completes");
    cr_assert_eq(SSL_write(server, "x", 1), 1);
    char byte = 0;
    cr_assert_eq(SSL_read(client, &byte, 1), 1);
    Outcome o;
    o.reused = SSL_session_reused(client) == 1;
    cr_assert_eq(o.reused, SSL_session_reused(server) == 1);
    o.session = SSL_get1_session(client);
    g_sessions.push_back(o.session);
    // A connection freed without close_notify marks its session as not
    // resumable, as a client that saw the connection cut must.
    SSL_shutdown(client);
    SSL_free(client);
    SSL_free(server);
    return o;
}

preforkd::config::Tls settings(const std::string& key_file = "")
{
    preforkd::config::Tls tls;
    tls.ticket_rotation = 3600;
    tls.ticket_key_file = key_file;
    return tls;
}

std::string key_file(const std::string& bytes, mode_t mode = 0600)
{
    char path[] = "/tmp/preforkd-ticket-keys-XXXXXX";
    int fd = ::mkstemp(path);
    cr_assert(fd >= 0);
    ::fchmod(fd, mode);
    cr_assert_eq(::write(fd, bytes.data(), bytes.size()), ssize_t(bytes.size()));
    ::close(fd);
    return path;
}

std::string random_bytes(std::size_t n)
{
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i)
        s[i] = char((i * 131 + n * 7 + std::size_t(::getpid())) & 0xff);
    return s;
}

void resumption_across_workers(int version)
{
    tickets::start(settings());
    SSL_CTX* worker_a = server_context();
    SSL_CTX* worker_b = server_context();
    SSL_CTX* client = client_context(version);
    Outcome first = connect(client, worker_a, nullptr);
    cr_assert_not(first.reused);
    Outcome second = connect(client, worker_b, first.session);
    cr_assert(second.reused, "a ticket from one worker resumes on another");
}

}  // namespace

TestSuite(tickets, .fini = release_all);

Test(tickets, a_ticket_resumes_on_another_worker_tls13)
{
    resumption_across_workers(TLS1_3_VERSION);
}

Test(tickets, a_ticket_resumes_on_another_worker_tls12)
{
    resumption_across_workers(TLS1_2_VERSION);
}

Test(tickets, one_rotation_keeps_a_ticket_two_end_it)
{
    tickets::start(settings());
    SSL_CTX* worker_a = server_context();
    SSL_CTX* worker_b = server_context();
    SSL_CTX* client = client_context(TLS1_3_VERSION);
    Outcome issued = connect(client, worker_a, nullptr);
    tickets::rotate();
    cr_assert_eq(tickets::current().size(), 2u, "the previous key still decrypts");
    cr_assert(connect(client, worker_b, issued.session).reused, "one period old: resumes");
    tickets::rotate();
    cr_assert_not(connect(client, worker_a, issued.session).reused,
                  "two periods old: a full handshake");
}

Test(tickets, tick_rotates_only_when_a_period_is_up)
{
    preforkd::config::Tls tls = settings();
    tls.ticket_rotation = 60;
    tickets::start(tls);
    std::vector<tickets::Key> before = tickets::current();
    tickets::tick(1000000);
    tickets::tick(1000000 + 59000);
    cr_assert(tickets::current() == before, "nothing rotates within the period");
    tickets::tick(1000000 + 60000);
    std::vector<tickets::Key> after = tickets::current();
    cr_assert_eq(after.size(), 2u);
    cr_assert(after[1] == before[0], "the old encrypting key now only decrypts");
    cr_assert(!(after[0] == before[0]));
}

Test(tickets, a_reload_keeps_the_keys)
{
    tickets::start(settings());
    std::vector<tickets::Key> before = tickets::current();
    tickets::commit(settings(), tickets::prepare(settings()));
    cr_assert(tickets::current() == before, "a HUP never regenerates the keys");
    tickets::start(settings());
    cr_assert(tickets::current() == before, "nor does a second start in one process");
}

Test(tickets, the_key_file_first_encrypts_the_others_decrypt)
{
    std::string a = random_bytes(80), b = std::string(80, 'b');
    std::string path = key_file(a);
    tickets::start(settings(path));
    std::vector<tickets::Key> loaded = tickets::current();
    cr_assert_eq(loaded.size(), 1u);
    cr_assert_eq(std::string(reinterpret_cast<const char*>(&loaded[0]), 80), a);
    SSL_CTX* worker_a = server_context();
    SSL_CTX* worker_b = server_context();
    SSL_CTX* client = client_context(TLS1_3_VERSION);
    Outcome issued = connect(client, worker_a, nullptr);

    // The fleet moves to key b, keeping a for decryption: still resumes.
    std::string both = key_file(b + a);
    tickets::commit(settings(both), tickets::prepare(settings(both)));
    cr_assert(connect(client, worker_b, issued.session).reused);
    tickets::tick(1000000);
    tickets::tick(1000000 + 7200 * 1000);
    cr_assert_eq(tickets::current().size(), 2u, "keys from a file are not rotated");
    // Then a is retired.
    std::string only_b = key_file(b);
    tickets::commit(settings(only_b), tickets::prepare(settings(only_b)));
    cr_assert_not(connect(client, worker_b, issued.session).reused);
    ::unlink(path.c_str());
    ::unlink(both.c_str());
    ::unlink(only_b.c_str());
}

Test(tickets, a_key_file_of_the_wrong_size_is_refused_with_its_size)
{
    std::string path = key_file(std::string(81, 'x'));
    try {
        tickets::prepare(settings(path));
        cr_assert_fail("81 bytes accepted");
    } catch (const std::runtime_error& e) {
        std::string what = e.what();
        cr_assert(what.find(path) != std::string::npos, "%s", what.c_str());
        cr_assert(what.find("81 bytes") != std::string::npos, "%s", what.c_str());
    }
    ::unlink(path.c_str());
    std::string why;
    cr_assert(tickets::parse_key_file("", why).empty());
    cr_assert(tickets::parse_key_file(std::string(17 * 80, 'x'), why).empty());
    cr_assert_eq(tickets::parse_key_file(std::string(3 * 80, 'x'), why).size(), 3u);
}

Test(tickets, a_missing_key_file_fails_naming_it)
{
    try {
        tickets::prepare(settings("/nonexistent/ticket.key"));
        cr_assert_fail("a missing file accepted");
    } catch (const std::exception& e) {
        cr_assert(std::string(e.what()).find("/nonexistent/ticket.key") != std::string::npos);
    }
}

Test(tickets, the_keys_live_in_a_shared_memfd)
{
    tickets::start(settings());
    int fd = tickets::memfd();
    cr_assert(fd >= 0);
    char link[64] = {0};
    std::string proc = "/proc/self/fd/" + std::to_string(fd);
    cr_assert(::readlink(proc.c_str(), link, sizeof link - 1) > 0);
    cr_assert(std::string(link).find("memfd:") != std::string::npos, "%s", link);
    // A forked child (a worker) sees a rotation the parent makes later.
    int pipefd[2];
    cr_assert(::pipe(pipefd) == 0);
    pid_t pid = ::fork();
    if (pid == 0) {
        char go;
        (void)!::read(pipefd[0], &go, 1);
        ::_exit(tickets::current().size() == 2 ? 0 : 1);
    }
    tickets::rotate();
    (void)!::write(pipefd[1], "g", 1);
    int status = 0;
    ::waitpid(pid, &status, 0);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child saw the rotated keys");
}

// An in-place upgrade passes the memfd across exec; the new binary maps it
// and keeps the keys (here the same process maps it a second time).
Test(tickets, an_adopted_block_keeps_the_keys)
{
    tickets::start(settings());
    std::vector<tickets::Key> before = tickets::current();
    int passed = ::dup(tickets::memfd());
    tickets::adopt(passed);
    cr_assert_eq(tickets::memfd(), passed);
    cr_assert(tickets::current() == before);
    tickets::start(settings());
    cr_assert(tickets::current() == before, "start() after adopt() makes no new keys");
    cr_assert_throw(tickets::adopt(::open("/dev/null", O_RDONLY)), std::runtime_error);
}

namespace {

std::string read_maps()
{
    std::string text;
    int fd = ::open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    char buf[4096];
    for (ssize_t n; fd >= 0 && (n = ::read(fd, buf, sizeof buf)) > 0;)
        text.append(buf, std::size_t(n));
    if (fd >= 0)
        ::close(fd);
    return text;
}

// The lines of /proc/self/maps that map the key block.
std::vector<std::string> block_lines(const std::string& maps)
{
    std::vector<std::string> out;
    std::size_t at = 0;
    for (std::size_t end; (end = maps.find('\n', at)) != std::string::npos; at = end + 1) {
        std::string line = maps.substr(at, end - at);
        if (line.find("preforkd-ticket-keys") != std::string::npos)
            out.push_back(line);
    }
    return out;
}

// mprotect(PROT_READ | PROT_WRITE) on the mapping a maps line describes:
// 0, or the errno it failed with.
int make_writable(const std::string& line)
{
    unsigned long from = std::stoul(line, nullptr, 16);
    unsigned long to = std::stoul(line.substr(line.find('-') + 1), nullptr, 16);
    if (::mprotect(reinterpret_cast<void*>(from), to - from, PROT_READ | PROT_WRITE) == 0)
        return 0;
    return errno;
}

std::int64_t monotonic_ms()
{
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace

// A reload rolled back returns to the keys of the configuration it returns
// to: a key file the failed reload read is no longer used, whether the kept
// keys came from a file or were made by the master.
Test(tickets, a_rollback_restores_the_kept_keys)
{
    std::string a = key_file(random_bytes(80)), b = key_file(std::string(80, 'b'));
    tickets::start(settings(a));
    std::vector<tickets::Key> from_a = tickets::current();
    tickets::Running kept = tickets::running();
    cr_assert(kept.from_file && kept.keys == from_a);
    tickets::commit(settings(b), tickets::prepare(settings(b)));
    cr_assert(!(tickets::current() == from_a), "the reload's file is in use");
    tickets::restore(settings(a), kept);
    cr_assert(tickets::current() == from_a, "a rollback keeps the failed reload's keys");
    // The kept configuration has no file: back to the master's own keys,
    // which rotate again.
    tickets::commit(settings(), tickets::prepare(settings()));
    std::vector<tickets::Key> made = tickets::current();
    kept = tickets::running();
    cr_assert(!kept.from_file);
    tickets::commit(settings(b), tickets::prepare(settings(b)));
    tickets::restore(settings(), kept);
    cr_assert(tickets::current() == made);
    std::int64_t now = monotonic_ms();
    tickets::tick(now + 1000);
    cr_assert(tickets::current() == made, "a restored key encrypts for a whole period");
    tickets::tick(now + 3601 * 1000);
    std::vector<tickets::Key> next = tickets::current();
    cr_assert(next.size() == 2 && !(next[0] == made[0]) && next[1] == made[0],
              "restored keys rotate again");
    // Made keys on both sides: a rotation since then is kept, not undone.
    kept = tickets::running();
    tickets::commit(settings(), tickets::prepare(settings()));
    tickets::rotate();
    std::vector<tickets::Key> rotated = tickets::current();
    tickets::restore(settings(), kept);
    cr_assert(tickets::current() == rotated);
    ::unlink(a.c_str());
    ::unlink(b.c_str());
}

// What a worker holds of the keys: one mapping, read-only, that it cannot
// make writable, and no descriptor through which to map another.
Test(tickets, a_child_can_read_the_keys_and_not_write_them)
{
    tickets::start(settings());
    int master_fd = tickets::memfd();
    int pipefd[2], checked[2];
    cr_assert(::pipe(pipefd) == 0 && ::pipe(checked) == 0);
    pid_t pid = ::fork();
    if (pid == 0) {
        tickets::forget_in_child();
        std::string maps = read_maps();
        std::vector<std::string> lines = block_lines(maps);
        int code = 0;
        if (lines.size() != 1 || lines[0].find(" r--s ") == std::string::npos)
            code = 1;   // the one mapping is read-only, shared
        else if (make_writable(lines[0]) != EACCES)
            code = 2;   // mprotect(PROT_WRITE) is refused
        else if (tickets::memfd() >= 0 || ::fcntl(master_fd, F_GETFD) != -1)
            code = 3;   // the read-write descriptor is gone
        else if (tickets::current().size() != 1)
            code = 4;
        (void)!::write(checked[1], "c", 1);
        char go;
        (void)!::read(pipefd[0], &go, 1);   // the master rotates meanwhile
        if (code == 0 && tickets::current().size() != 2)
            code = 5;
        ::_exit(code);
    }
    char done;
    (void)!::read(checked[0], &done, 1);
    tickets::rotate();
    (void)!::write(pipefd[1], "g", 1);
    int status = 0;
    ::waitpid(pid, &status, 0);
    cr_assert(WIFEXITED(status), "the child died (a write through the view?)");
    cr_assert_eq(WEXITSTATUS(status), 0,
                 "%d (1: not one r--s mapping, 2: mprotect allowed, 3: memfd kept, 4/5: reads)",
                 WEXITSTATUS(status));
    // The master itself holds the writable mapping and the read-only view.
    std::vector<std::string> mine = block_lines(read_maps());
    cr_assert_eq(mine.size(), 2u, "%s", read_maps().c_str());
}
