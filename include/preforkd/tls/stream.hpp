// tls/stream.hpp - one server-side TLS session over a connection.
//
// A Stream is the TLS half of the connection loop's transport: plain
// connections use the socket directly (recv, send, sendfile), TLS ones
// call these with the same contract, so connection.cpp tests a pointer
// and never makes a virtual call on the plain path.
//
// Bytes already read from the socket before the session starts (the first
// look at a ClientHello, or what the parker gathered) are the `prefix`:
// TLS reads them from a memory BIO first and the socket after.  With
// fd < 0 the session is all memory (the fuzz target): reads end at the
// prefix and writes are discarded.
//
// Bodies: with kernel TLS active on the socket, send_file() is
// SSL_sendfile (zero copy); otherwise pread() of 64 KiB and one SSL_write
// of it, four 16 KiB records, into a write buffer that goes out in one
// send: a 1 MiB body is 16 reads and 16 sends, not 64 of each.  The two
// buffers (64 and 65 KiB) are made for the first file body on a
// connection; answers from memory (heads, small cached files) go out one
// SSL_write, one send, through the write buffer or, before it exists,
// straight.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <sys/types.h>

#include "preforkd/tls/context.hpp"

typedef struct bio_st BIO;

namespace preforkd::tls {

// Sets the server-name and ALPN callbacks on `ctx` (context.cpp, for
// every site's context).
void install_callbacks(SSL_CTX* ctx);

class Stream {
public:
    // A server session on `fd` starting with `initial`, the context of the
    // listener's default site; `contexts` and `finder` serve SNI.
    Stream(SSL_CTX* initial, const Contexts* contexts, SiteFinder finder, int fd,
           std::string prefix);
    ~Stream();
    Stream(const Stream&) = delete;
    Stream& operator=(const Stream&) = delete;

    enum class Step { done, want_read, want_write, failed };
    // One non-blocking step of the handshake.
    Step handshake();

    // As recv(2): > 0 bytes, 0 at the end of the stream (close_notify or
    // EOF), -1 with errno EAGAIN (wait for the socket) or EIO.
    ssize_t read(char* data, std::size_t size);
    // As send(2), all or nothing: `size`, or -1 with errno EAGAIN (wait
    // for POLLOUT, then call again with the same arguments) or EIO.
    ssize_t write(const char* data, std::size_t size);
    // As sendfile(2): bytes of `file` sent from *offset (advanced), 0 if
    // the file ended, -1 with errno EAGAIN or EIO.
    ssize_t send_file(int file, off_t* offset, std::size_t count);
    // Decrypted bytes waiting inside TLS: no poll() before reading them.
    bool pending() const;
    // Sends close_notify (best effort, never waits).
    void close_notify();

    bool kernel_tls() const;
    std::string_view protocol() const;   // "TLSv1.3"
    std::string_view cipher() const;     // "TLS_AES_128_GCM_SHA256"
    bool resumed() const;
    std::string alpn() const;            // "http/1.1", or "" when none was agreed
    // Why the handshake failed, for the debug log.
    const std::string& failure() const noexcept { return failure_; }

    // Set by the server-name callback: the client sent SNI, naming site
    // `sni_site` (its listener's default site when the name is unknown).
    bool sni_given = false;
    std::size_t sni_site = 0;

    // For the callbacks only.
    const Contexts* contexts() const noexcept { return contexts_; }
    const SiteFinder& finder() const noexcept { return finder_; }

private:
    // The largest record's plaintext.
    static constexpr std::size_t kRecord = 16384;
    // Records a send_file() call reads and sends at once.
    static constexpr std::size_t kBatchRecords = 4;
    // Room for kBatchRecords full records with their headers and tags.
    static constexpr long kBatchBufferBytes = long(kBatchRecords * (kRecord + 256));

    bool refill();
    ssize_t failed_io(int ret);
    // Puts the write buffer under the session; false if it cannot be made
    // (then records go out one by one).
    bool batch_writes();
    // Sends what the write buffer holds: true when it is empty, false with
    // errno EAGAIN (call again) or EIO.
    bool flush();
    // One SSL_write of `data` (at most once per bytes, `taken` holding what
    // TLS took) and the flush: the count sent, or -1/0 as failed_io().
    ssize_t write_through(const char* data, std::size_t size, std::size_t& taken);

    SSL* ssl_ = nullptr;
    const Contexts* contexts_;
    SiteFinder finder_;
    int fd_;
    bool on_prefix_ = false;   // rbio is still the prefix's memory BIO
    std::string failure_;
    std::unique_ptr<char[]> file_buffer_;   // made for the first file body
    std::size_t file_chunk_ = 0;  // its size: what one send_file() reads
    std::size_t buffered_ = 0;   // file bytes in it not yet taken by TLS
    BIO* batch_ = nullptr;       // the write buffer, owned by the session
    std::size_t taken_ = 0;      // file bytes TLS took, not yet sent
    std::size_t written_ = 0;    // write()'s bytes taken by TLS, not yet sent
};

}  // namespace preforkd::tls
