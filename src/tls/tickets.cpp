// tickets.cpp - the shared session-ticket keys (see tls/tickets.hpp).
//
// One block per master, in a memfd mapped MAP_SHARED before the first fork.
// The master maps it twice: g_writer, read-write and MADV_DONTFORK (no child
// ever has it), and g_block, read-only from a descriptor opened O_RDONLY,
// which workers inherit and every reader uses.  The kernel refuses
// PROT_WRITE on a shared mapping of a read-only descriptor, so a worker
// cannot undo that; and a child closes the read-write memfd at once
// (forget_in_child()).  The block is words of std::atomic so that a
// reader copying while the master writes is a retry, not undefined
// behaviour; the sequence counter tells the two apart.  The master's policy
// (the period, when the last rotation was, whether the keys came from a
// file) is ordinary process state: only the master acts on it.
//
// The state is per process rather than an object handed around because the
// OpenSSL callback that needs it has no user pointer of ours, and because
// there is one set of keys per master by design.
//
// Rejected: a process-shared mutex (a worker killed while holding it would
// stall every handshake), generating keys in each worker (tickets would
// resume only on the worker that issued them), and sealing the memfd with
// F_SEAL_FUTURE_WRITE (the new image of an in-place upgrade could then map
// the block only read-only, and could never rotate the keys the old
// generation's workers read).
#include "preforkd/tls/tickets.hpp"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <stdexcept>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "preforkd/fd.hpp"
#include "preforkd/log.hpp"

namespace preforkd::tls::tickets {
namespace {

constexpr std::size_t kWords = kKeyBytes / 8;
static_assert(sizeof(Key) == kKeyBytes, "a key is its 80 file bytes");
static_assert(std::atomic<std::uint64_t>::is_always_lock_free, "the block needs lock-free words");

struct Block {
    std::atomic<std::uint64_t> sequence;   // odd while the master writes
    std::atomic<std::uint64_t> count;      // keys in use, the encrypting one first
    std::atomic<std::uint64_t> words[kMaxKeys * kWords];
};

// A snapshot on the stack: the callback runs per handshake and allocates
// nothing.
struct Snapshot {
    std::array<Key, kMaxKeys> keys;
    std::size_t count = 0;
};

const Block* g_block = nullptr;   // read-only: what every process reads
// What the master writes after it has forked (a rotation's time) or a child
// writes to forget it (the writer, the memfd) is thread-local: a page of
// .data or .bss written on either side of a fork becomes a private copy in
// the child, while every process writes its thread-local page anyway.
thread_local Block* g_writer = nullptr;   // read-write, the master's alone
thread_local Fd g_memfd;
// The master's policy.
int g_period_s = 3600;
bool g_from_file = false;
thread_local std::int64_t g_last_rotation_ms = 0;   // 0: not yet seen by tick()

std::int64_t monotonic_ms()
{
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

Key random_key()
{
    Key k;
    auto* bytes = reinterpret_cast<std::uint8_t*>(&k);
    for (std::size_t done = 0; done < sizeof k;) {
        ssize_t n = ::getrandom(bytes + done, sizeof k - done, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            throw sys_error("getrandom", "session-ticket key");
        done += std::size_t(n);
    }
    return k;
}

// The one writer: the master.
void publish(const std::vector<Key>& keys)
{
    std::size_t n = std::min(keys.size(), kMaxKeys);
    Block* b = g_writer;
    std::uint64_t s = b->sequence.load(std::memory_order_relaxed);
    b->sequence.store(s + 1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    for (std::size_t i = 0; i < n; ++i) {
        std::uint64_t w[kWords];
        std::memcpy(w, &keys[i], sizeof w);
        for (std::size_t j = 0; j < kWords; ++j)
            b->words[i * kWords + j].store(w[j], std::memory_order_relaxed);
    }
    b->count.store(n, std::memory_order_relaxed);
    b->sequence.store(s + 2, std::memory_order_release);
}

void read_into(Snapshot& out)
{
    out.count = 0;
    if (!g_block)
        return;
    for (;;) {
        std::uint64_t before = g_block->sequence.load(std::memory_order_acquire);
        if (before & 1)
            continue;   // the master is mid-write: a few stores, never a wait on a process
        std::size_t n = std::min<std::size_t>(g_block->count.load(std::memory_order_relaxed), kMaxKeys);
        for (std::size_t i = 0; i < n; ++i) {
            std::uint64_t w[kWords];
            for (std::size_t j = 0; j < kWords; ++j)
                w[j] = g_block->words[i * kWords + j].load(std::memory_order_relaxed);
            std::memcpy(&out.keys[i], w, sizeof w);
        }
        std::atomic_thread_fence(std::memory_order_acquire);
        if (g_block->sequence.load(std::memory_order_relaxed) == before) {
            out.count = n;
            return;
        }
    }
}

void* map_block(int fd, int prot)
{
    void* p = ::mmap(nullptr, sizeof(Block), prot, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        throw sys_error("mmap", "session-ticket keys");
    // Keys are no business of a core dump, and better not in swap; the
    // lock may exceed RLIMIT_MEMLOCK for an unprivileged master, which
    // costs nothing but the guarantee.
    ::madvise(p, sizeof(Block), MADV_DONTDUMP);
    ::mlock(p, sizeof(Block));
    return p;
}

// The master's writable mapping: no child inherits it.
Block* map_writer(int fd)
{
    void* p = map_block(fd, PROT_READ | PROT_WRITE);
    if (::madvise(p, sizeof(Block), MADV_DONTFORK) != 0) {
        int e = errno;
        ::munmap(p, sizeof(Block));
        throw sys_error("madvise", "session-ticket keys", e);
    }
    return static_cast<Block*>(p);
}

// The readers' mapping, from a second, read-only open of the memfd: the
// kernel clears VM_MAYWRITE on it, so no mprotect() can make it writable.
// Without /proc (a bare chroot or container) the view is still PROT_READ,
// but of the read-write descriptor: said once, and the server runs.
const Block* map_reader(int fd)
{
    std::string path = "/proc/self/fd/" + std::to_string(fd);
    Fd ro(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!ro)
        log::warning(sys_message("open", path, errno) +
                     ": the workers' read-only view of the session-ticket keys is one they "
                     "could make writable");
    return static_cast<const Block*>(map_block(ro ? ro.get() : fd, PROT_READ));
}

// Both mappings of `fd`, or neither (and the old ones stay).
void map_both(Fd fd)
{
    Block* writer = map_writer(fd.get());
    const Block* reader = nullptr;
    try {
        reader = map_reader(fd.get());
    } catch (...) {
        ::munmap(writer, sizeof(Block));
        throw;
    }
    if (g_writer)
        ::munmap(g_writer, sizeof(Block));
    if (g_block)
        ::munmap(const_cast<Block*>(g_block), sizeof(Block));
    g_writer = writer;
    g_block = reader;
    g_memfd = std::move(fd);
}

void create_block()
{
    Fd fd(::memfd_create("preforkd-ticket-keys", MFD_CLOEXEC));
    if (!fd)
        throw sys_error("memfd_create", "session-ticket keys");
    if (::ftruncate(fd.get(), sizeof(Block)) != 0)
        throw sys_error("ftruncate", "session-ticket keys");
    map_both(std::move(fd));
    new (g_writer) Block{};
}

// Called with a found key: sets up the HMAC over the ticket.
bool set_mac(EVP_MAC_CTX* mac, Key& key)
{
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key.hmac.data(), key.hmac.size()),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    return EVP_MAC_CTX_set_params(mac, params) == 1;
}

// OpenSSL's contract: when encrypting, 1 = a ticket with this key, 0 = no
// ticket; when decrypting, 0 = unknown key (a full handshake), 1 = good,
// 2 = good and issue a fresh ticket; negative = error.  A fresh ticket is
// issued for a key that only decrypts now, and always in TLS 1.3: there a
// server sends a new ticket after a resumption only when asked to, and
// clients (OpenSSL's, browsers) use a ticket once, so without one every
// other connection would be a full handshake.
int on_ticket(SSL* ssl, unsigned char name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
              EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac, int encrypt)
{
    Snapshot s;
    read_into(s);
    if (encrypt) {
        if (s.count == 0)
            return 0;
        Key& k = s.keys[0];
        std::memcpy(name, k.name.data(), k.name.size());
        if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(EVP_aes_256_cbc())) != 1)
            return -1;
        if (EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, k.aes.data(), iv) != 1 ||
            !set_mac(mac, k))
            return -1;
        return 1;
    }
    for (std::size_t i = 0; i < s.count; ++i) {
        Key& k = s.keys[i];
        if (std::memcmp(name, k.name.data(), k.name.size()) != 0)
            continue;
        if (!set_mac(mac, k) ||
            EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, k.aes.data(), iv) != 1)
            return -1;
        return i == 0 && SSL_version(ssl) < TLS1_3_VERSION ? 1 : 2;
    }
    return 0;
}

std::string quoted(const std::string& path)
{
    return "ticket_key_file \"" + path + "\"";
}

}  // namespace

std::vector<Key> parse_key_file(std::string_view bytes, std::string& why)
{
    if (bytes.empty() || bytes.size() % kKeyBytes != 0 || bytes.size() > kMaxKeys * kKeyBytes) {
        why = std::to_string(bytes.size()) + " bytes; expected 80 per key (16 bytes of name, " +
              "32 of HMAC key, 32 of AES key), 1 to " + std::to_string(kMaxKeys) +
              " keys, as `openssl rand 80` writes one";
        return {};
    }
    std::vector<Key> keys(bytes.size() / kKeyBytes);
    std::memcpy(keys.data(), bytes.data(), bytes.size());
    return keys;
}

std::vector<Key> read_key_file(const std::string& path, bool warn)
{
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (!fd)
        throw std::runtime_error(quoted(path) + ": " + std::strerror(errno));
    struct stat st{};
    if (::fstat(fd.get(), &st) != 0)
        throw std::runtime_error(quoted(path) + ": " + std::strerror(errno));
    if (!S_ISREG(st.st_mode))
        throw std::runtime_error(quoted(path) + ": not a regular file");
    if (warn && (st.st_mode & (S_IRGRP | S_IROTH)))
        log::warning(quoted(path) + " is readable by its group or others; it should be mode 0600");
    // One byte more than the largest valid file: a longer file is an error
    // without reading it whole.
    std::string bytes(kMaxKeys * kKeyBytes + 1, '\0');
    std::size_t got = 0;
    while (got < bytes.size()) {
        ssize_t n = ::read(fd.get(), bytes.data() + got, bytes.size() - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            throw std::runtime_error(quoted(path) + ": " + std::strerror(errno));
        if (n == 0)
            break;
        got += std::size_t(n);
    }
    bytes.resize(got);
    std::string why;
    std::vector<Key> keys = parse_key_file(bytes, why);
    OPENSSL_cleanse(bytes.data(), bytes.size());
    if (keys.empty())
        throw std::runtime_error(quoted(path) + ": " + why);
    return keys;
}

void start(const config::Tls& tls)
{
    std::vector<Key> keys = prepare(tls);
    g_period_s = tls.ticket_rotation;
    g_last_rotation_ms = 0;
    if (g_writer && keys.empty() && !g_from_file)
        return;
    if (!g_writer)
        create_block();
    g_from_file = !keys.empty();
    if (keys.empty())
        keys.push_back(random_key());
    publish(keys);
    if (g_from_file)
        log::notice("session tickets: " + std::to_string(keys.size()) + " key(s) from " +
                    quoted(tls.ticket_key_file));
    else
        log::info("session tickets: keys in shared memory, rotated every " +
                  std::to_string(g_period_s) + " s");
}

std::string located(const config::Tls& tls, const std::string& message)
{
    return (tls.ticket_key_file_where.empty() ? "" : tls.ticket_key_file_where + ": ") + "tls." +
           message;
}

std::vector<Key> prepare(const config::Tls& tls)
{
    if (tls.ticket_key_file.empty())
        return {};
    try {
        return read_key_file(tls.ticket_key_file);
    } catch (const std::runtime_error& e) {
        throw std::runtime_error(located(tls, e.what()));
    }
}

void commit(const config::Tls& tls, std::vector<Key> from_file)
{
    g_period_s = tls.ticket_rotation;
    if (!g_writer)
        return;
    if (!from_file.empty()) {
        publish(from_file);
        g_from_file = true;
        log::notice("session tickets: " + std::to_string(from_file.size()) + " key(s) from " +
                    quoted(tls.ticket_key_file));
    } else if (g_from_file) {
        g_from_file = false;
        rotate();
        g_last_rotation_ms = monotonic_ms();
    }
}

Running running()
{
    return Running{current(), g_from_file};
}

void restore(const config::Tls& tls, const Running& kept)
{
    g_period_s = tls.ticket_rotation;
    if (!g_writer || (!kept.from_file && !g_from_file) || kept.keys.empty())
        return;
    publish(kept.keys);
    g_from_file = kept.from_file;
    g_last_rotation_ms = monotonic_ms();   // the restored encrypting key gets a whole period
    log::notice("session tickets: the keys of the running configuration restored (" +
                std::to_string(kept.keys.size()) + " key(s)" +
                (kept.from_file ? " from " + quoted(tls.ticket_key_file) : std::string()) + ")");
}

void tick(std::int64_t now_ms)
{
    if (!g_writer || g_from_file)
        return;
    if (g_last_rotation_ms == 0) {
        g_last_rotation_ms = now_ms;
        return;
    }
    if (now_ms - g_last_rotation_ms < std::int64_t(g_period_s) * 1000)
        return;
    rotate();
    g_last_rotation_ms = now_ms;
    log::info("session tickets: keys rotated");
}

void rotate()
{
    if (!g_writer)
        return;
    Snapshot s;
    read_into(s);
    std::vector<Key> keys{random_key()};
    if (s.count > 0)
        keys.push_back(s.keys[0]);
    publish(keys);
}

int memfd() noexcept
{
    return g_memfd.get();
}

void adopt(int fd)
{
    Fd owned(fd);
    struct stat st{};
    if (::fstat(owned.get(), &st) != 0)
        throw sys_error("fstat", "session-ticket keys");
    if (!S_ISREG(st.st_mode) || st.st_size != off_t(sizeof(Block)))
        throw std::runtime_error("descriptor " + std::to_string(fd) +
                                 " holds no session-ticket key block");
    map_both(std::move(owned));
    g_from_file = false;
}

void forget_in_child() noexcept
{
    g_memfd.reset();
    g_writer = nullptr;   // MADV_DONTFORK: not mapped here
}

std::vector<Key> current()
{
    Snapshot s;
    read_into(s);
    return {s.keys.begin(), s.keys.begin() + std::ptrdiff_t(s.count)};
}

void attach(SSL_CTX* ctx)
{
    SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, on_ticket);
}

}  // namespace preforkd::tls::tickets
