// http/body.cpp - the request-body discarder.
//
// A Content-Length body is a countdown.  A chunked body is a small state
// machine, one short case per state, fed a byte at a time except for chunk
// data, which is skipped in bulk.  It is as strict as the head parser: CRLF
// everywhere (a bare LF is an error, not a line end), a chunk-size of hex
// digits only, chunk extensions exactly as RFC 9112 7.1.1 writes them
// (*( BWS ";" BWS token [ BWS "=" BWS ( token / quoted-string ) ] ), so
// "5;" or "5 junk" is an error), no control bytes in trailer fields.  Nothing
// reads an extension, but a recipient that reads a malformed one differently
// - as part of the size, or as the end of the line - is how chunk-size
// smuggling works, so none is let through.  The limit counts every byte
// read, framing included, so a body made of endless zero-padded size lines,
// extensions or trailer fields is cut off like a large one.  Rejected:
// checking trailer fields against the full field grammar; they are never
// merged into the head, so only what could confuse the framing (CR, LF, NUL
// and other controls) matters there.
#include "preforkd/http/body.hpp"
#include "preforkd/http/fields.hpp"

#include <algorithm>
#include <limits>

namespace preforkd::http {
namespace {

// The one reason that is about size, not framing; compared by address.
constexpr const char* kOverLimit = "request body over the discard limit";

// HTAB and visible bytes, obs-text included; CR, LF and other controls not.
bool is_field_byte(char c) noexcept
{
    auto u = static_cast<unsigned char>(c);
    return u == '\t' || (u >= 0x20 && u != 0x7f);
}

// RFC 9110 5.6.4 qdtext: a field byte other than DQUOTE and backslash.
bool is_qdtext(char c) noexcept { return is_field_byte(c) && c != '"' && c != '\\'; }

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
        reason_ = kOverLimit;
    }
}

DiscardResult BodyDiscarder::feed(std::string_view data) noexcept
{
    std::size_t pos = 0;
    while (pos < data.size() && state_ != State::done && state_ != State::error) {
        if (budget_ == 0) {
            state_ = State::error;
            reason_ = kOverLimit;
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
    if (state_ == State::error)
        return DiscardResult{DiscardState::error, 0, reason_, reason_ == kOverLimit};
    if (state_ == State::done) return DiscardResult{DiscardState::done, pos, "", false};
    return DiscardResult{DiscardState::more, pos, "", false};
}

BodyDiscarder::State BodyDiscarder::fail(const char* why) noexcept
{
    reason_ = why;
    return State::error;
}

// One framing byte of a chunked body; returns the next state.
BodyDiscarder::State BodyDiscarder::step(char c) noexcept
{
    switch (state_) {
    case State::size: {
        int v = hex_value(c);
        if (v >= 0) {
            // Leading zeros are legal, so count digits of the value only.
            if (remaining_ > (std::numeric_limits<std::uint64_t>::max() >> 4))
                return fail("chunk size overflows");
            remaining_ = remaining_ * 16 + static_cast<unsigned>(v);
            ++digits_;
            return State::size;
        }
        if (digits_ == 0) return fail("chunk size is not hex");
        if (c == ';') return State::ext_name_start;
        if (is_ows(c)) return State::ext_bws;
        if (c == '\r') return State::size_lf;
        return fail("junk after chunk size");
    }
    case State::size_lf:
        return c == '\n' ? after_size_line() : fail("bare CR in chunk size line");
    case State::data_cr:
        return c == '\r' ? State::data_lf : fail("chunk data longer than its size");
    case State::data_lf:
        digits_ = 0;
        return c == '\n' ? State::size : fail("bare CR after chunk data");
    case State::trailer_start:
        if (c == '\r') return State::final_lf;
        // A leading space would be obs-fold; a bare LF is not a line end.
        return c != ' ' && c != '\t' && is_field_byte(c) ? State::trailer
                                                         : fail("malformed trailer field");
    case State::trailer:
        if (c == '\r') return State::trailer_lf;
        return is_field_byte(c) ? State::trailer : fail("control byte in trailer field");
    case State::trailer_lf:
        return c == '\n' ? State::trailer_start : fail("bare CR in trailer field");
    case State::final_lf:
        return c == '\n' ? State::done : fail("bare CR at end of chunked body");
    default:
        return step_extension(c);
    }
}

// One byte of the chunk-ext part of a size line:
//   *( BWS ";" BWS token [ BWS "=" BWS ( token / quoted-string ) ] ) CR
// BWS may stand only where the grammar puts it: not before the CR.
BodyDiscarder::State BodyDiscarder::step_extension(char c) noexcept
{
    const char* why = "malformed chunk extension";
    switch (state_) {
    case State::ext_bws:
        if (c == ';') return State::ext_name_start;
        return is_ows(c) ? State::ext_bws : fail(why);
    case State::ext_name_start:
        if (is_ows(c)) return State::ext_name_start;
        return is_tchar(c) ? State::ext_name : fail("empty chunk extension name");
    case State::ext_name:
        if (is_tchar(c)) return State::ext_name;
        if (c == '=') return State::ext_value_start;
        if (is_ows(c)) return State::ext_name_bws;
        return after_extension(c);
    case State::ext_token:
        return is_tchar(c) ? State::ext_token : after_extension(c);
    case State::ext_quote_end:
        return after_extension(c);
    case State::ext_name_bws:
        if (c == '=') return State::ext_value_start;
        if (c == ';') return State::ext_name_start;
        return is_ows(c) ? State::ext_name_bws : fail(why);
    case State::ext_value_start:
        if (is_ows(c)) return State::ext_value_start;
        if (c == '"') return State::ext_quoted;
        return is_tchar(c) ? State::ext_token : fail("empty chunk extension value");
    case State::ext_quoted:
        if (c == '"') return State::ext_quote_end;
        if (c == '\\') return State::ext_escape;
        return is_qdtext(c) ? State::ext_quoted : fail(why);
    case State::ext_escape:
        return is_field_byte(c) ? State::ext_quoted : fail(why);
    default:
        return state_;   // data states and the final ones are handled by feed()
    }
}

// The byte after a whole chunk-ext (name, or name=value): the next one, the
// end of the line, or BWS before the next one.
BodyDiscarder::State BodyDiscarder::after_extension(char c) noexcept
{
    if (c == ';') return State::ext_name_start;
    if (c == '\r') return State::size_lf;
    return is_ows(c) ? State::ext_bws : fail("malformed chunk extension");
}

// After "size CRLF": the last chunk leads to the trailer section; any other
// chunk's data must fit in what the limit still allows.
BodyDiscarder::State BodyDiscarder::after_size_line() noexcept
{
    if (remaining_ == 0) return State::trailer_start;
    // +2 for the CRLF that must follow the data.
    if (remaining_ > budget_ || budget_ - remaining_ < 2)
        return fail(kOverLimit);
    return State::chunk_data;
}

}  // namespace preforkd::http
