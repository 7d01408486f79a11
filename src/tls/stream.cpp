// stream.cpp - a server-side TLS session (tls/stream.hpp), and the two
// callbacks every site's context shares: server name and ALPN.
//
// Errors inside a session are values: a failed handshake, an alert or a
// reset become Step::failed or -1 with EIO, the OpenSSL error queue is
// emptied on the way, and nothing here throws or aborts, so no input a
// client can send ends a worker.
#include "preforkd/tls/stream.hpp"

#include <cerrno>
#include <cstring>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace preforkd::tls {
namespace {

constexpr unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

// SNI: the site the name belongs to on this listener; its context, if it
// has a certificate, takes over the handshake.  An unknown name is
// answered with the default site's certificate, as nginx does, so the
// client can say what it thinks of it.
int on_server_name(SSL* ssl, int*, void*)
{
    auto* s = static_cast<Stream*>(SSL_get_app_data(ssl));
    const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!s || !name || !*name)
        return SSL_TLSEXT_ERR_NOACK;
    s->sni_given = true;
    s->sni_site = s->finder() ? s->finder()(name) : 0;
    SSL_CTX* ctx = s->contexts() ? s->contexts()->for_site(s->sni_site) : nullptr;
    if (ctx && ctx != SSL_get_SSL_CTX(ssl))
        SSL_set_SSL_CTX(ssl, ctx);
    return SSL_TLSEXT_ERR_OK;
}

// http/1.1 is all there is: a client that offers ALPN without it gets the
// no_application_protocol alert (RFC 7301 section 3.2).
int on_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
            unsigned inlen, void*)
{
    unsigned char* chosen = nullptr;
    if (SSL_select_next_proto(&chosen, outlen, kHttp11, sizeof kHttp11, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = chosen;
    return SSL_TLSEXT_ERR_OK;
}

}  // namespace

void install_callbacks(SSL_CTX* ctx)
{
    SSL_CTX_set_tlsext_servername_callback(ctx, on_server_name);
    SSL_CTX_set_alpn_select_cb(ctx, on_alpn, nullptr);
}

Stream::Stream(SSL_CTX* initial, const Contexts* contexts, SiteFinder finder, int fd,
               std::string prefix)
    : contexts_(contexts), finder_(std::move(finder)), fd_(fd)
{
    ssl_ = SSL_new(initial);
    if (!ssl_) {
        ERR_clear_error();
        failure_ = "SSL_new failed";
        return;
    }
    SSL_set_app_data(ssl_, this);
    SSL_set_accept_state(ssl_);
    BIO* wbio = fd >= 0 ? BIO_new_socket(fd, BIO_NOCLOSE) : BIO_new(BIO_s_mem());
    BIO* rbio = nullptr;
    if (!prefix.empty() || fd < 0) {
        rbio = BIO_new(BIO_s_mem());
        if (rbio) {
            BIO_write(rbio, prefix.data(), int(prefix.size()));
            BIO_set_mem_eof_return(rbio, -1);   // drained: "retry", not EOF
        }
        on_prefix_ = true;
    } else {
        rbio = BIO_new_socket(fd, BIO_NOCLOSE);
    }
    if (!rbio || !wbio) {
        BIO_free(rbio);
        BIO_free(wbio);
        SSL_free(ssl_);
        ssl_ = nullptr;
        ERR_clear_error();
        failure_ = "BIO_new failed";
        return;
    }
    SSL_set0_rbio(ssl_, rbio);
    SSL_set0_wbio(ssl_, wbio);
}

Stream::~Stream()
{
    SSL_free(ssl_);
}

// The prefix is used up: from here TLS reads the socket.  False when there
// is nothing more to read from (an all-memory session, or bytes still
// waiting in the prefix).
bool Stream::refill()
{
    BIO* rbio = SSL_get_rbio(ssl_);
    if (!on_prefix_ || fd_ < 0 || BIO_ctrl_pending(rbio) > 0)
        return false;
    BIO* socket = BIO_new_socket(fd_, BIO_NOCLOSE);
    if (!socket)
        return false;
    SSL_set0_rbio(ssl_, socket);
    on_prefix_ = false;
    return true;
}

Stream::Step Stream::handshake()
{
    if (!ssl_)
        return Step::failed;
    for (;;) {
        int r = SSL_do_handshake(ssl_);
        if (r == 1)
            return Step::done;
        int err = SSL_get_error(ssl_, r);
        if (err == SSL_ERROR_WANT_READ && refill())
            continue;
        if (err == SSL_ERROR_WANT_READ)
            return Step::want_read;
        if (err == SSL_ERROR_WANT_WRITE)
            return Step::want_write;
        unsigned long e = ERR_peek_last_error();
        char text[256] = "the connection ended";
        if (e)
            ERR_error_string_n(e, text, sizeof text);
        else if (err == SSL_ERROR_SYSCALL && errno)
            std::snprintf(text, sizeof text, "%s", std::strerror(errno));
        failure_ = text;
        ERR_clear_error();
        return Step::failed;
    }
}

ssize_t Stream::failed_io(int ret)
{
    int err = SSL_get_error(ssl_, ret);
    ERR_clear_error();
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        errno = EAGAIN;
        return -1;
    }
    if (err == SSL_ERROR_ZERO_RETURN)
        return 0;
    errno = EIO;
    return -1;
}

ssize_t Stream::read(char* data, std::size_t size)
{
    for (;;) {
        // Reading writes nothing that must leave at once: TLS 1.3 answers
        // a KeyUpdate with the next write, whose flush sends it.
        int n = SSL_read(ssl_, data, int(std::min<std::size_t>(size, 1 << 30)));
        if (n > 0)
            return n;
        if (SSL_get_error(ssl_, n) == SSL_ERROR_WANT_READ && refill())
            continue;
        // A client that closes without close_notify ends the stream too:
        // HTTP frames its own messages (RFC 9112 section 9.8).
        if (SSL_get_error(ssl_, n) == SSL_ERROR_SYSCALL && errno == 0) {
            ERR_clear_error();
            return 0;
        }
        return failed_io(n);
    }
}

ssize_t Stream::write(const char* data, std::size_t size)
{
    if (size == 0)
        return 0;
    return write_through(data, size, written_);
}

// SSL_write takes the bytes into the write buffer once; after EAGAIN from
// the flush the caller comes back with the same bytes, and only the flush
// is tried again.  `taken` remembers what TLS took in between.
ssize_t Stream::write_through(const char* data, std::size_t size, std::size_t& taken)
{
    if (taken == 0) {
        int n = SSL_write(ssl_, data, int(std::min<std::size_t>(size, 1 << 30)));
        if (n <= 0)
            return failed_io(n);
        taken = std::size_t(n);
    }
    if (!flush())
        return -1;
    ssize_t n = ssize_t(taken);
    taken = 0;
    return n;
}

// One pread() of up to kBatchRecords records' worth of the file, one
// SSL_write of it into the write buffer, one send.  Bytes TLS took but
// that did not leave yet are remembered (taken_), and the call that
// finds them sent reports them: *offset only moves past bytes that left.
ssize_t Stream::send_file(int file, off_t* offset, std::size_t count)
{
#ifndef OPENSSL_NO_KTLS
    if (kernel_tls()) {
        ossl_ssize_t n = SSL_sendfile(ssl_, file, *offset, count, 0);
        if (n > 0) {
            *offset += n;
            return n;
        }
        return n == 0 ? 0 : failed_io(int(n));
    }
#endif
    if (!file_buffer_) {
        file_chunk_ = batch_writes() ? kBatchRecords * kRecord : kRecord;
        file_buffer_.reset(new char[file_chunk_]);   // not zeroed: pread fills it
    }
    if (buffered_ == 0) {
        ssize_t got = ::pread(file, file_buffer_.get(), std::min(count, file_chunk_), *offset);
        if (got <= 0)
            return got;
        buffered_ = std::size_t(got);
    }
    // Called again after EAGAIN with the same buffer, as SSL_write wants.
    ssize_t n = write_through(file_buffer_.get(), buffered_, taken_);
    if (n <= 0)
        return n;
    *offset += n;
    buffered_ = 0;
    return n;
}

// The write buffer goes between the session and the socket when the
// first file body is sent, and stays for the rest of the connection.
bool Stream::batch_writes()
{
    if (batch_)
        return true;
    BIO* next = SSL_get_wbio(ssl_);
    BIO* buffer = BIO_new(BIO_f_buffer());
    if (!next || !buffer || BIO_set_write_buffer_size(buffer, kBatchBufferBytes) <= 0 ||
        !BIO_up_ref(next)) {
        BIO_free(buffer);
        ERR_clear_error();
        return false;
    }
    BIO_push(buffer, next);
    SSL_set0_wbio(ssl_, buffer);   // drops the session's own reference to `next`
    batch_ = buffer;
    return true;
}

bool Stream::flush()
{
    if (!batch_ || BIO_wpending(batch_) == 0)
        return true;
    if (BIO_flush(batch_) > 0)
        return true;
    errno = BIO_should_retry(batch_) ? EAGAIN : EIO;
    ERR_clear_error();
    return false;
}

bool Stream::pending() const
{
    return ssl_ && SSL_has_pending(ssl_);
}

void Stream::close_notify()
{
    if (ssl_ && SSL_is_init_finished(ssl_))
        SSL_shutdown(ssl_);
    if (batch_)
        BIO_flush(batch_);
    ERR_clear_error();
}

bool Stream::kernel_tls() const
{
#ifndef OPENSSL_NO_KTLS
    return ssl_ && BIO_get_ktls_send(SSL_get_wbio(ssl_));
#else
    return false;
#endif
}

std::string_view Stream::protocol() const
{
    return ssl_ ? SSL_get_version(ssl_) : "";
}

std::string_view Stream::cipher() const
{
    const char* name = ssl_ ? SSL_get_cipher_name(ssl_) : nullptr;
    return name ? name : "";
}

bool Stream::resumed() const
{
    return ssl_ && SSL_session_reused(ssl_);
}

std::string Stream::alpn() const
{
    const unsigned char* p = nullptr;
    unsigned len = 0;
    if (ssl_)
        SSL_get0_alpn_selected(ssl_, &p, &len);
    return p ? std::string(reinterpret_cast<const char*>(p), len) : "";
}

}  // namespace preforkd::tls
