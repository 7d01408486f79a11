// http/range.hpp - deciding what a Range header field asks for (RFC 9110 14).
//
// Pure arithmetic on a field value and a representation length; the
// responder turns the answer into a 200, a 206 (one part or
// multipart/byteranges) or a 416.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace preforkd::http {

struct ByteSpan {
    std::uint64_t first = 0;
    std::uint64_t length = 0;   // never 0 in a RangePlan
    bool operator==(const ByteSpan&) const = default;
};

enum class RangeKind {
    whole,           // ignore the Range: send the whole representation (200)
    partial,         // send `spans` (206)
    unsatisfiable,   // 416 with "Content-Range: bytes */size"
};

struct RangePlan {
    RangeKind kind = RangeKind::whole;
    std::vector<ByteSpan> spans;   // when partial: ascending, disjoint, not adjacent
};

// Evaluates the Range field value `value` against `size` bytes:
//  - a unit other than bytes, a syntax error, last < first, or more than
//    `max_ranges` range-specs (0: ranges are never honoured): whole (RFC
//    9110 14.2 lets a server ignore any Range it does not want to honour);
//  - positions may have any number of digits; one past 2^64-1 counts as
//    2^64-1, beyond any representation;
//  - no range-spec satisfiable (first >= size, suffix of 0): unsatisfiable;
//    of an empty representation only a non-zero suffix is satisfiable, and
//    it gets the (empty) whole;
//  - the satisfiable ranges adding up to more than the representation
//    (overlaps asking for the same bytes again): whole, as nginx does;
//  - otherwise partial: spans clamped to the size, sorted, and overlapping
//    or adjacent ones coalesced (RFC 9110 15.3.7.2 allows both), so the
//    client may get fewer parts than it asked for, in ascending order.
RangePlan plan_ranges(std::string_view value, std::uint64_t size, std::size_t max_ranges);

// "first-last/size" of a span, the value of a Content-Range after "bytes ".
std::string content_range(const ByteSpan& span, std::uint64_t size);

}  // namespace preforkd::http
