// context.cpp - reading certificates and keys, and building one SSL_CTX per
// site (tls/context.hpp says what is checked and why).
//
// The files are read into memory here and parsed with the PEM functions,
// not handed to SSL_CTX_use_certificate_chain_file(): each problem then gets
// its own message naming the site's tls group (file:line), the file, and
// what is wrong with it, instead of an OpenSSL error queue.  A Site checks
// everything it can before it reports, so one run names every bad file.
//
// Rejected: verifying a chain only against the system store.  Every private
// or test CA would fail that, and refusing them would push administrators
// to drop the check; the file's own consistency (each certificate signed by
// the next) catches the mistakes that matter - a wrong order, a leaf with
// another site's intermediate - and the system store, where it knows the
// root, catches the rest.
#include "preforkd/tls/context.hpp"

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <cstring>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "preforkd/fd.hpp"
#include "preforkd/log.hpp"
#include "preforkd/tls/stream.hpp"
#include "preforkd/tls/tickets.hpp"

namespace preforkd::tls {
namespace {

constexpr std::time_t kExpirySoon = 14 * 86400;

struct CertFree {
    void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
    void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct CtxFree {
    void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
using Cert = std::unique_ptr<X509, CertFree>;
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;
using Ctx = std::unique_ptr<SSL_CTX, CtxFree>;

// The most recent OpenSSL error as text, and the queue emptied.
std::string openssl_error()
{
    unsigned long e = ERR_peek_last_error();
    char text[256] = "unknown OpenSSL error";
    if (e)
        ERR_error_string_n(e, text, sizeof text);
    ERR_clear_error();
    return text;
}

std::string time_text(const ASN1_TIME* t)
{
    struct tm tm {};
    if (!ASN1_TIME_to_tm(t, &tm))
        return "?";
    char out[32];
    std::strftime(out, sizeof out, "%Y-%m-%d %H:%M:%S UTC", &tm);
    return out;
}

std::string subject_of(X509* x)
{
    char text[512];
    X509_NAME_oneline(X509_get_subject_name(x), text, sizeof text);
    return text;
}

std::string names_of(X509* x)
{
    std::string out;
    auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr));
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names); ++i) {
        const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
        if (n->type != GEN_DNS)
            continue;
        const unsigned char* d = ASN1_STRING_get0_data(n->d.dNSName);
        out += (out.empty() ? "" : ", ") + std::string(reinterpret_cast<const char*>(d),
                                                       std::size_t(ASN1_STRING_length(n->d.dNSName)));
    }
    GENERAL_NAMES_free(names);
    return out.empty() ? "none" : out;
}

// One site's files, read and checked.
class Site {
public:
    Site(const config::SiteTls& t, std::time_t now, Report& report)
        : t_(t), now_(now), report_(report) {}
    // False when a problem was reported.
    bool load();
    Ctx make_context(const config::Tls& settings, bool ktls);

private:
    void problem(const std::string& text) { report_.problems.push_back(t_.where + ": " + text); }
    void read_certificates();
    void read_key();
    void check_dates();
    void check_chain();
    bool consistent_chain();

    const config::SiteTls& t_;
    std::time_t now_;
    Report& report_;
    std::vector<Cert> chain_;   // the leaf first
    Key key_;
    bool ok_ = true;
};

std::string read_file(const std::string& path, std::string& error)
{
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        error = sys_message("open", path, errno);
        return "";
    }
    std::string text;
    char buf[8192];
    for (ssize_t n; (n = ::read(fd.get(), buf, sizeof buf)) != 0;) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            error = sys_message("read", path, errno);
            return "";
        }
        text.append(buf, std::size_t(n));
    }
    return text;
}

bool Site::load()
{
    read_certificates();
    read_key();
    if (!chain_.empty() && key_ && X509_check_private_key(chain_[0].get(), key_.get()) != 1) {
        ERR_clear_error();
        problem("sites.tls.key " + t_.key + " does not match the certificate " + t_.certificate);
        ok_ = false;
    }
    if (!chain_.empty()) {
        check_dates();
        check_chain();
    }
    return ok_;
}

void Site::read_certificates()
{
    std::string error;
    std::string text = read_file(t_.certificate, error);
    if (!error.empty()) {
        problem("sites.tls.certificate: " + error);
        ok_ = false;
        return;
    }
    BIO* bio = BIO_new_mem_buf(text.data(), int(text.size()));
    while (X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr))
        chain_.emplace_back(x);
    BIO_free(bio);
    ERR_clear_error();   // the end of the file reads as an error
    if (chain_.empty()) {
        problem("sites.tls.certificate " + t_.certificate + " holds no PEM certificate");
        ok_ = false;
    }
}

void Site::read_key()
{
    std::string error;
    std::string text = read_file(t_.key, error);
    if (!error.empty()) {
        problem("sites.tls.key: " + error);
        ok_ = false;
        return;
    }
    struct stat st;
    if (::stat(t_.key.c_str(), &st) == 0 && (st.st_mode & S_IROTH))
        report_.warnings.push_back(t_.where + ": sites.tls.key " + t_.key +
                                   " is readable by every user; chmod 0600 it");
    BIO* bio = BIO_new_mem_buf(text.data(), int(text.size()));
    key_.reset(PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr));
    BIO_free(bio);
    if (!key_) {
        problem("sites.tls.key " + t_.key + " holds no PEM private key (" + openssl_error() + ")");
        ok_ = false;
    }
}

void Site::check_dates()
{
    for (std::size_t i = 0; i < chain_.size(); ++i) {
        X509* x = chain_[i].get();
        std::string which = i == 0 ? "the certificate" : "chain certificate " + subject_of(x);
        if (X509_cmp_time(X509_get0_notAfter(x), &now_) < 0) {
            problem(t_.certificate + ": " + which + " expired on " +
                    time_text(X509_get0_notAfter(x)));
            ok_ = false;
        } else if (X509_cmp_time(X509_get0_notBefore(x), &now_) > 0) {
            problem(t_.certificate + ": " + which + " is not valid before " +
                    time_text(X509_get0_notBefore(x)));
            ok_ = false;
        }
    }
    std::time_t soon = now_ + kExpirySoon;
    X509* leaf = chain_[0].get();
    if (ok_ && X509_cmp_time(X509_get0_notAfter(leaf), &soon) < 0)
        report_.warnings.push_back(t_.where + ": the certificate " + t_.certificate +
                                   " expires on " + time_text(X509_get0_notAfter(leaf)) +
                                   ", within 14 days");
    report_.certificates.push_back(t_.certificate + ": subject " + subject_of(leaf) + "; names " +
                                   names_of(leaf) + "; expires " +
                                   time_text(X509_get0_notAfter(leaf)));
}

// The system store first; a chain it cannot complete (an unknown root) must
// then be consistent in itself.
void Site::check_chain()
{
    X509_STORE* store = X509_STORE_new();
    X509_STORE_set_default_paths(store);
    STACK_OF(X509)* untrusted = sk_X509_new_null();
    for (std::size_t i = 1; i < chain_.size(); ++i)
        sk_X509_push(untrusted, chain_[i].get());
    X509_STORE_CTX* ctx = X509_STORE_CTX_new();
    X509_STORE_CTX_init(ctx, store, chain_[0].get(), untrusted);
    // Dates are check_dates()'s, against the same `now`.
    X509_STORE_CTX_set_time(ctx, 0, now_);
    bool verified = X509_verify_cert(ctx) == 1;
    int err = X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    sk_X509_free(untrusted);
    X509_STORE_free(store);
    ERR_clear_error();
    bool unknown_root = err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
                        err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT ||
                        err == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT ||
                        err == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN ||
                        err == X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE;
    bool dates = err == X509_V_ERR_CERT_HAS_EXPIRED || err == X509_V_ERR_CERT_NOT_YET_VALID;
    if (verified || dates || (unknown_root && consistent_chain()))
        return;
    if (unknown_root)
        return;   // consistent_chain() said what is wrong
    problem(t_.certificate + ": the certificate chain does not verify (" +
            X509_verify_cert_error_string(err) + ")");
    ok_ = false;
}

bool Site::consistent_chain()
{
    for (std::size_t i = 0; i < chain_.size(); ++i) {
        X509* x = chain_[i].get();
        bool last = i + 1 == chain_.size();
        X509* issuer = last ? x : chain_[i + 1].get();
        bool self_signed = X509_check_issued(x, x) == X509_V_OK;
        if (last && !self_signed)
            break;   // issued by a CA the file does not hold
        if (X509_check_issued(issuer, x) != X509_V_OK || X509_verify(x, X509_get0_pubkey(issuer)) != 1) {
            ERR_clear_error();
            problem(t_.certificate + ": the certificate chain does not verify: " + subject_of(x) +
                    (last ? " has a bad self-signature"
                          : " is not signed by the next certificate in the file, " +
                                subject_of(issuer)));
            ok_ = false;
            return false;
        }
    }
    return true;
}

// Protocol names as written in tls.protocols; the lowest and highest set.
int version_of(const std::string& name)
{
    return name == "TLSv1.3" ? TLS1_3_VERSION : TLS1_2_VERSION;
}

Ctx Site::make_context(const config::Tls& s, bool ktls)
{
    Ctx ctx(SSL_CTX_new(TLS_server_method()));
    if (!ctx)
        throw std::runtime_error("SSL_CTX_new failed: " + openssl_error());
    int lo = TLS1_3_VERSION, hi = TLS1_2_VERSION;
    for (const std::string& p : s.protocols) {
        lo = std::min(lo, version_of(p));
        hi = std::max(hi, version_of(p));
    }
    SSL_CTX_set_min_proto_version(ctx.get(), lo);
    SSL_CTX_set_max_proto_version(ctx.get(), hi);
    long options = SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION |
                   SSL_OP_IGNORE_UNEXPECTED_EOF;
    if (!s.session_tickets)
        options |= SSL_OP_NO_TICKET;
    if (ktls)
        options |= SSL_OP_ENABLE_KTLS;
    SSL_CTX_set_options(ctx.get(), options);
    if (s.session_tickets)
        tickets::attach(ctx.get());   // the keys every worker shares (tls/tickets.hpp)
    // Tickets carry the session; no server-side cache to share between
    // processes (each worker would have its own).
    SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
    // A worker holds one connection at a time, so its record buffers are
    // kept for the connection's life rather than freed and allocated again
    // around every request (SSL_MODE_RELEASE_BUFFERS): 34 KiB a busy worker
    // for a malloc and free of each buffer per request saved.  Read-ahead
    // fills the read buffer with what the socket holds, so a record comes
    // in one recv, not a header read and a body read.
    SSL_CTX_set_read_ahead(ctx.get(), 1);
    // The certificate file is the chain sent, leaf first (fullchain.pem).
    // Without this, a file holding the leaf alone makes OpenSSL try to
    // build a chain at every full handshake, from a store that holds
    // nothing: one X509_verify_cert() per handshake for no certificate.
    SSL_CTX_set_mode(ctx.get(), SSL_MODE_NO_AUTO_CHAIN);
    std::string where = t_.where + ": ";
    if (!s.ciphers.empty() && SSL_CTX_set_cipher_list(ctx.get(), s.ciphers.c_str()) != 1)
        throw std::runtime_error(where + "tls.ciphers: " + openssl_error());
    if (!s.ciphersuites.empty() && SSL_CTX_set_ciphersuites(ctx.get(), s.ciphersuites.c_str()) != 1)
        throw std::runtime_error(where + "tls.ciphersuites: " + openssl_error());
    if (!s.curves.empty() && SSL_CTX_set1_groups_list(ctx.get(), s.curves.c_str()) != 1)
        throw std::runtime_error(where + "tls.curves: " + openssl_error());
    if (SSL_CTX_use_certificate(ctx.get(), chain_[0].get()) != 1 ||
        SSL_CTX_use_PrivateKey(ctx.get(), key_.get()) != 1)
        throw std::runtime_error(where + "cannot use the certificate and key: " + openssl_error());
    for (std::size_t i = 1; i < chain_.size(); ++i)
        if (SSL_CTX_add1_chain_cert(ctx.get(), chain_[i].get()) != 1)
            throw std::runtime_error(where + "cannot use the chain: " + openssl_error());
    install_callbacks(ctx.get());
    return ctx;
}

// Both build() and check(): every site with a certificate, in site order.
std::vector<Ctx> run(const config::Config& config, std::time_t now, Report& report, bool ktls)
{
    std::vector<config::Site> sites = config::effective_sites(config);
    bool any = std::any_of(sites.begin(), sites.end(),
                           [](const config::Site& s) { return !s.tls.certificate.empty(); });
    // A server without certificates never loads OpenSSL's tables: its
    // master and workers stay as small as before TLS existed.
    if (!any)
        return std::vector<Ctx>(sites.size());
    init();
    std::vector<Ctx> made;
    for (const config::Site& s : sites) {
        made.emplace_back();
        if (s.tls.certificate.empty())
            continue;
        Site site(s.tls, now, report);
        if (!site.load())
            continue;
        try {
            made.back() = site.make_context(config.tls, ktls);
        } catch (const std::runtime_error& e) {
            report.problems.push_back(e.what());
        }
    }
    return made;
}

}  // namespace

void init()
{
    OPENSSL_init_ssl(OPENSSL_INIT_LOAD_SSL_STRINGS | OPENSSL_INIT_LOAD_CRYPTO_STRINGS, nullptr);
}

Contexts::~Contexts()
{
    for (SSL_CTX* c : contexts_)
        SSL_CTX_free(c);
}

Contexts::Contexts(Contexts&& o) noexcept
    : contexts_(std::move(o.contexts_)), warnings_(std::move(o.warnings_)), ktls_(o.ktls_)
{
    o.contexts_.clear();
}

Contexts& Contexts::operator=(Contexts&& o) noexcept
{
    if (this != &o) {
        for (SSL_CTX* c : contexts_)
            SSL_CTX_free(c);
        contexts_ = std::move(o.contexts_);
        o.contexts_.clear();
        warnings_ = std::move(o.warnings_);
        ktls_ = o.ktls_;
    }
    return *this;
}

bool Contexts::empty() const noexcept
{
    for (SSL_CTX* c : contexts_)
        if (c)
            return false;
    return true;
}

Contexts build(const config::Config& config, std::time_t now)
{
    Report report;
    bool ktls = kernel_tls_available();
    std::vector<Ctx> made = run(config, now, report, ktls);
    if (!report.problems.empty()) {
        std::string text;
        for (const std::string& p : report.problems)
            text += (text.empty() ? "" : "\n") + p;
        throw std::runtime_error(text);
    }
    Contexts c;
    for (Ctx& ctx : made)
        c.contexts_.push_back(ctx.release());
    c.warnings_ = std::move(report.warnings);
    c.ktls_ = ktls;
    return c;
}

Report check(const config::Config& config, std::time_t now)
{
    Report report;
    run(config, now, report, false);
    return report;
}

std::shared_ptr<const Generation> generation(const config::Config& config)
{
    auto g = std::make_shared<Generation>();
    g->contexts = build(config);
    for (std::size_t i = 0; i < config.listen.size(); ++i)
        g->listeners.push_back(config::listen_options_of(config, i).tls);
    g->handshake_timeout_ms = config.tls.handshake_timeout * 1000;
    for (const std::string& w : g->contexts.warnings())
        log::warning(w);
    if (!g->contexts.empty())
        log::notice(g->contexts.ktls()
                      ? "TLS file bodies: kernel TLS with SSL_sendfile where the session allows it"
                      : "TLS file bodies: read and SSL_write in 16 KiB records, four to a send "
                        "(no kernel TLS here)");
    return g;
}

bool kernel_tls_available()
{
#ifdef OPENSSL_NO_KTLS
    return false;
#else
    // Without the kernel's tls module, setting the upper-layer protocol
    // fails with ENOENT; with it, an unconnected socket says ENOTCONN.
    Fd probe(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!probe)
        return false;
    int r = ::setsockopt(probe.get(), SOL_TCP, TCP_ULP, "tls", 3);
    return r == 0 || errno != ENOENT;
#endif
}

}  // namespace preforkd::tls
