// http/body.hpp - skipping a request body we do not want.
//
// A static-file server never needs a request body, but it must not leave one
// in the buffer: those bytes would be parsed as the next pipelined request,
// which is how request smuggling works.  BodyDiscarder consumes a
// Content-Length or chunked body (RFC 9112 6 and 7.1) from the front of a
// buffer, a piece at a time, without keeping any of it, and stops at a byte
// limit so that a client cannot keep a worker busy by uploading forever.
// Like the head parser it does no I/O; unlike it, it keeps its place between
// calls, because a body can be far larger than any buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "preforkd/http/request.hpp"

namespace preforkd::http {

enum class DiscardState { more, done, error };

struct DiscardResult {
    DiscardState state = DiscardState::more;
    std::size_t consumed = 0;   // bytes at the front of the data that were body
    const char* reason = "";    // why, for a log line, when state == error
    bool over_limit = false;    // the error is the limit, not the framing
};

class BodyDiscarder {
public:
    // Skips the body `request` announces (none: done at once).  At most
    // `limit` bytes are read, chunk framing and trailer fields included; a
    // body that needs more is an error, and so is a Content-Length above
    // the limit, at once, without reading anything.
    BodyDiscarder(const Request& request, std::uint64_t limit) noexcept;
    BodyDiscarder(std::uint64_t content_length, bool chunked, std::uint64_t limit) noexcept;

    // Consumes body bytes from the front of `data`, which starts where the
    // previous call's `consumed` ended.  more: all of `data` was body (so
    // consumed == data.size()), call again with the next bytes.  done: the
    // body ended after `consumed` bytes; the rest is the next request.
    // error: malformed chunking (bad size, bare LF, missing CRLF after the
    // data, a chunk-ext outside the RFC 9112 7.1.1 grammar, control bytes in
    // a trailer field) or over the limit; the connection must be closed.
    // Once done or error, every later call answers the same with
    // consumed == 0.
    DiscardResult feed(std::string_view data) noexcept;

    bool finished() const noexcept { return state_ == State::done; }

private:
    enum class State : std::uint8_t {
        length_data,   // Content-Length bytes, remaining_ left
        size,          // chunk-size hex digits
        ext_bws,       // BWS before the ";" of a chunk-ext
        ext_name_start,// after ";": BWS, then the chunk-ext-name
        ext_name,      // inside the chunk-ext-name token
        ext_name_bws,  // BWS after the name: "=" or the next ";" follows
        ext_value_start,  // after "=": BWS, then a token or a quoted-string
        ext_token,     // inside a token chunk-ext-val
        ext_quoted,    // inside a quoted-string chunk-ext-val
        ext_escape,    // after a backslash in the quoted-string
        ext_quote_end, // after the closing quote
        size_lf,       // the LF after the chunk-size line
        chunk_data,    // remaining_ bytes of chunk data
        data_cr,       // the CRLF after chunk data
        data_lf,
        trailer_start, // a trailer field line, or the final CRLF
        trailer,       // inside a trailer field line
        trailer_lf,
        final_lf,      // the LF of the final CRLF
        done,
        error,
    };

    State step(char c) noexcept;
    State step_extension(char c) noexcept;
    State after_extension(char c) noexcept;
    State after_size_line() noexcept;
    State fail(const char* why) noexcept;

    State state_;
    std::uint64_t remaining_ = 0;   // data bytes left in the body or chunk
    std::uint64_t budget_;          // bytes still allowed by the limit
    unsigned digits_ = 0;           // hex digits read of the chunk-size
    const char* reason_ = "";
};

}  // namespace preforkd::http
