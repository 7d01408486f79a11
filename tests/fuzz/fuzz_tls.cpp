// fuzz_tls.cpp - libFuzzer target for the TLS front end.
//
// The input is what a client could write first on a TLS listener.  It is
// handed to a tls::Stream as its prefix, as the worker hands it the bytes
// it read (or the parker gathered), over memory BIOs: the server side of a
// handshake runs with the server-name and ALPN callbacks every site's
// context has, until it wants more than the input holds or fails.  Then
// the stream is read from and closed as the connection loop would.  The
// sanitizers and OpenSSL's own checks do the judging; the target traps
// when a failed handshake leaves no reason, or when a step reports success
// on bytes that cannot hold a finished handshake (a client's Finished
// needs the server's reply, which this input never saw).
//
// The context has a P-256 key and a self-signed certificate made at start
// in memory: nothing secret is committed.
//
// Build: see the fuzz block at the end of the top-level Makefile.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "preforkd/tls/stream.hpp"

namespace {

SSL_CTX* make_context()
{
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* cert = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("fuzz.test"), -1, -1, 0);
    X509_set_issuer_name(cert, name);
    X509_sign(cert, key, EVP_sha256());
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_use_certificate(ctx, cert);
    SSL_CTX_use_PrivateKey(ctx, key);
    preforkd::tls::install_callbacks(ctx);
    X509_free(cert);
    EVP_PKEY_free(key);
    return ctx;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    static SSL_CTX* ctx = make_context();
    std::string input(reinterpret_cast<const char*>(data), size);
    preforkd::tls::Stream s(ctx, nullptr, [](std::string_view) { return std::size_t(0); }, -1,
                            input);
    using Step = preforkd::tls::Stream::Step;
    Step step = s.handshake();
    if (step == Step::failed && s.failure().empty())
        std::abort();
    if (step == Step::done)
        std::abort();   // no client can finish without the server's reply
    char buf[4096];
    (void)s.read(buf, sizeof buf);
    (void)s.alpn();
    (void)s.protocol();
    s.close_notify();
    return 0;
}
