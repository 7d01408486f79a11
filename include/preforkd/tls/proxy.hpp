// tls/proxy.hpp - the PROXY protocol header (versions 1 and 2), over bytes.
//
// A listener with proxy_protocol = true expects every connection to open
// with the header a load balancer or TLS terminator writes before anything
// else: version 1 is one text line ("PROXY TCP4 src dst sport dport\r\n"),
// version 2 a binary block after a fixed 12-byte signature.  parse() looks
// at the bytes read so far and says whether more are needed, the header is
// complete (how many bytes it took, and the client's address it carries), or
// the bytes are no PROXY header at all, in which case the connection is
// closed: a listener that requires the header never guesses.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace preforkd::proxy {

enum class State { incomplete, complete, error };

struct Header {
    // LOCAL (v2) or UNKNOWN (v1): the proxy speaks for itself (a health
    // check); the connection's own peer address stays the client address.
    bool local = false;
    std::string source;          // numeric address, "" when local
    unsigned source_port = 0;
    std::string destination;
    unsigned destination_port = 0;
    int version = 0;             // 1 or 2
};

struct Parsed {
    State state = State::incomplete;
    std::size_t consumed = 0;    // bytes of the header, when complete
    Header header;
    std::string error;           // why not, when error
};

// The longest header this accepts: v1's 107 bytes, or v2's 16-byte preamble
// plus up to 1 KiB of addresses and TLVs (TLVs are skipped unread).
inline constexpr std::size_t kMaxHeader = 16 + 1024;

Parsed parse(std::string_view bytes);

}  // namespace preforkd::proxy
