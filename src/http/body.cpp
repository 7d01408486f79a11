// http/body.cpp - the request-body discarder.
//
// A Content-Length body is a countdown.  A chunked body is a small state
// machine, one short case per state, fed a byte at a time except for chunk
// data, which is skipped in bulk.  It is as strict as the head parser: CRLF
// everywhere (a bare LF is an error, not a line end), a chunk-size of hex
// digits only, no control bytes in extensions or trailer fields.  The limit
// counts every byte read, framing included, so a body made of endless
// zero-padded size lines or trailer fields is cut off like a large one.
// Rejected: validating chunk extensions and trailer fields against their
// full grammar; nothing reads them, so only what could confuse the framing
// (CR, LF, NUL and other controls) matters.
#include "preforkd/http/body.hpp"
#include "preforkd/http/fields.hpp"

#include <algorithm>
#include <limits>

namespace preforkd::http {
namespace {

// HTAB and visible bytes, obs-text included; CR, LF and other controls not.
bool is_field_byte(char c) noexcept
{
    auto u = static_cast<unsigned char>(c);
    return u == '\t' || (u >= 0x20 && u != 0x7f);
}

}  // namespace

BodyDiscarder::BodyDiscarder(const Request& request, std::uint64_t limit) noexcept
    : BodyDiscarder(request.content_length, request.chunked, limit)
{
}

BodyDiscarder::BodyDiscarder(std::uint64_t content_length, bool chunked,
                             std::uint64_t limit) noexcept
    : state_(chunked ? State::size : State::length_data),
      remaining_(chunked ? 0 : content_length), budget_(limit)
{
    if (chunked) return;
    if (content_length == 0) {
        state_ = State::done;
    } else if (content_length > limit) {
        // Known to be hopeless: close now rather than read up to the limit.
        state_ = State::error;
        reason_ = "request body over the discard limit";
    }
}

DiscardResult BodyDiscarder::feed(std::string_view data) noexcept
{
    std::size_t pos = 0;
    while (pos < data.size() && state_ != State::done && state_ != State::error) {
        if (budget_ == 0) {
            state_ = State::error;
            reason_ = "request body over the discard limit";
            break;
        }
        if (state_ == State::length_data || state_ == State::chunk_data) {
            // Data is skipped in bulk; remaining_ <= budget_ was checked
            // when the length became known.
            std::uint64_t n = std::min<std::uint64_t>(remaining_, data.size() - pos);
            pos += n;
            remaining_ -= n;
            budget_ -= n;
            if (remaining_ == 0)
                state_ = state_ == State::length_data ? State::done : State::data_cr;
            continue;
        }
        --budget_;
        state_ = step(data[pos++]);
    }
    if (state_ == State::error) return DiscardResult{DiscardState::error, 0, reason_};
    if (state_ == State::done) return DiscardResult{DiscardState::done, pos, ""};
    return DiscardResult{DiscardState::more, pos, ""};
}

// One framing byte of a chunked body; returns the next state.
BodyDiscarder::State BodyDiscarder::step(char c) noexcept
{
    auto bad = [this](const char* why) {
        reason_ = why;
        return State::error;
    };
    switch (state_) {
    case State::size: {
        int v = hex_value(c);
        if (v >= 0) {
            // Leading zeros are legal, so count digits of the value only.
            if (remaining_ > (std::numeric_limits<std::uint64_t>::max() >> 4))
                return bad("chunk size overflows");
            remaining_ = remaining_ * 16 + static_cast<unsigned>(v);
            ++digits_;
            return State::size;
        }
        if (digits_ == 0) return bad("chunk size is not hex");
        if (c == ';' || c == ' ' || c == '\t') return State::extension;   // BWS ";" ext
        if (c == '\r') return State::size_lf;
        return bad("junk after chunk size");
    }
    case State::extension:
        if (c == '\r') return State::size_lf;
        return is_field_byte(c) ? State::extension : bad("control byte in chunk extension");
    case State::size_lf:
        return c == '\n' ? after_size_line() : bad("bare CR in chunk size line");
    case State::data_cr:
        return c == '\r' ? State::data_lf : bad("chunk data longer than its size");
    case State::data_lf:
        digits_ = 0;
        return c == '\n' ? State::size : bad("bare CR after chunk data");
    case State::trailer_start:
        if (c == '\r') return State::final_lf;
        // A leading space would be obs-fold; a bare LF is not a line end.
        return c != ' ' && c != '\t' && is_field_byte(c) ? State::trailer
                                                         : bad("malformed trailer field");
    case State::trailer:
        if (c == '\r') return State::trailer_lf;
        return is_field_byte(c) ? State::trailer : bad("control byte in trailer field");
    case State::trailer_lf:
        return c == '\n' ? State::trailer_start : bad("bare CR in trailer field");
    case State::final_lf:
        return c == '\n' ? State::done : bad("bare CR at end of chunked body");
    default:
        return state_;   // data states and the final ones are handled by feed()
    }
}

// After "size CRLF": the last chunk leads to the trailer section; any other
// chunk's data must fit in what the limit still allows.
BodyDiscarder::State BodyDiscarder::after_size_line() noexcept
{
    if (remaining_ == 0) return State::trailer_start;
    // +2 for the CRLF that must follow the data.
    if (remaining_ > budget_ || budget_ - remaining_ < 2) {
        reason_ = "request body over the discard limit";
        return State::error;
    }
    return State::chunk_data;
}

}  // namespace preforkd::http
