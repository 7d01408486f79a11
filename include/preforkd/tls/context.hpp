// tls/context.hpp - one OpenSSL context per site, built by the master.
//
// The master reads every site's certificate and key as root, before any
// worker starts, and builds an SSL_CTX per site with the global tls group's
// protocols, ciphers, cipher suites and curves, ALPN offering http/1.1, and
// a server-name callback that moves a handshake to the context of the site
// its SNI names.  Workers inherit the contexts across fork() and never open
// a key file.  A reload builds a new set beside the running one; any bad
// file rejects the whole set (build() throws), so the old generation keeps
// serving.
//
// What is checked, for each site with `tls = { certificate; key; }`:
//   - both files can be read and parsed (PEM; the certificate file holds the
//     leaf first, then its chain);
//   - the key matches the leaf's public key;
//   - no certificate of the file is expired or not yet valid;
//   - the chain verifies against the system's trusted certificates with
//     the file's other certificates as intermediates; a chain that ends at
//     a CA the system does not know (a private or test CA) is accepted when
//     it is internally consistent instead: each certificate of the file is
//     issued and signed by the next one, and a self-signed last one carries
//     a valid signature.  A broken signature or a wrong order is an error
//     either way.
// A key file that others may read, and (for -t) a certificate expiring
// within 14 days, are warnings.
#pragma once

#include <ctime>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "preforkd/config.hpp"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace preforkd::tls {

class Contexts;

// What a check finds; problems reject a start or a reload, warnings are
// said, `certificates` is what -T prints (one line per site).
struct Report {
    std::vector<std::string> problems;
    std::vector<std::string> warnings;
    std::vector<std::string> certificates;
};

// Once in the master, before any context is built and before fork: OpenSSL
// reads its own configuration file here, never later in a sandboxed worker.
void init();

// The contexts of one generation, index for index with
// config::effective_sites() (and so with the http::SiteTable built from
// it); a site without a certificate has none.
class Contexts {
public:
    Contexts() = default;
    ~Contexts();
    Contexts(Contexts&&) noexcept;
    Contexts& operator=(Contexts&&) noexcept;
    Contexts(const Contexts&) = delete;
    Contexts& operator=(const Contexts&) = delete;

    // nullptr when site `site` has no certificate (or is out of range).
    // Inline: the fuzz target links stream.cpp without this file's .cpp.
    SSL_CTX* for_site(std::size_t site) const noexcept
    {
        return site < contexts_.size() ? contexts_[site] : nullptr;
    }
    bool empty() const noexcept;
    // Whether contexts ask for kernel TLS (the master probed the kernel).
    bool ktls() const noexcept { return ktls_; }
    const std::vector<std::string>& warnings() const noexcept { return warnings_; }

private:
    friend Contexts build(const config::Config& config, std::time_t now);
    std::vector<SSL_CTX*> contexts_;
    std::vector<std::string> warnings_;
    bool ktls_ = false;
};

// Builds the contexts of every site of `config` that has a certificate.
// Throws std::runtime_error listing every problem, one per line, each
// starting with the site's tls group as "file:line: ".  `now` is the time
// certificates must be valid at.
Contexts build(const config::Config& config, std::time_t now = std::time(nullptr));

// The same checks without keeping contexts, for -t and a reload's checking
// child; also the warnings (14 days to expiry) and -T's certificate lines.
Report check(const config::Config& config, std::time_t now = std::time(nullptr));

// Whether this kernel and OpenSSL can do kernel TLS (TCP_ULP "tls"); the
// master says once at start which body path TLS connections take.
bool kernel_tls_available();

// What the workers of one generation need for TLS: the contexts, which
// listeners speak TLS (index for index with Config::listen), and how long a
// handshake may take.
struct Generation {
    Contexts contexts;
    std::vector<bool> listeners;
    int handshake_timeout_ms = 10000;

    bool on(int listener) const noexcept
    {
        return listener >= 0 && std::size_t(listener) < listeners.size() && listeners[std::size_t(listener)];
    }
};

// The Generation of `config`: build() and the listeners' tls flags.  Also
// logs the build's warnings, and which path file bodies take.
std::shared_ptr<const Generation> generation(const config::Config& config);

// A connection's choice of site by server name: the index of the site the
// name belongs to on this connection's listener (its default site when no
// site has the name).  Set per connection (stream.hpp) before the handshake.
using SiteFinder = std::function<std::size_t(std::string_view name)>;

}  // namespace preforkd::tls
