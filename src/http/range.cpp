// http/range.cpp - byte ranges: parsing, clamping, coalescing.
//
// Two passes.  The first parses every range-spec and fails the whole field
// on the first bad one: a Range we do not fully understand is ignored, never
// half-honoured.  The second resolves the specs against the length, drops
// unsatisfiable ones, and merges the rest.
//
// The defences against range abuse are nginx's, plus coalescing: a cap on the
// number of range-specs (nginx max_ranges), and the whole representation
// instead of parts when the ranges together ask for more bytes than it has
// ("bytes=0-,0-,0-..." would otherwise multiply one file into a huge
// response).  Where nginx answers a malformed Range with 416 we send the
// whole file instead, as RFC 9110 14.2 prefers: a Range a proxy mangled must
// not make the content unreachable.
#include "preforkd/http/range.hpp"

#include <algorithm>
#include <limits>
#include <optional>

#include "preforkd/http/fields.hpp"
#include "preforkd/http/request.hpp"

namespace preforkd::http {
namespace {

// One range-spec as written: "first-last", "first-" or "-suffix".
struct Spec {
    std::optional<std::uint64_t> first, last;   // no first: a suffix of `last` bytes
};

// 1*DIGIT, any number of them (leading zeros are valid, RFC 9110 14.1.1).
// A value past 2^64-1 saturates there: beyond any representation, which is
// all that matters about it, so it is still a number rather than a reason
// to ignore the field.
std::optional<std::uint64_t> number(std::string_view s)
{
    constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
    if (s.empty()) return std::nullopt;
    std::uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        auto d = static_cast<std::uint64_t>(c - '0');
        v = v > (kMax - d) / 10 ? kMax : v * 10 + d;
    }
    return v;
}

std::optional<Spec> parse_spec(std::string_view text)
{
    std::size_t dash = text.find('-');
    if (dash == std::string_view::npos) return std::nullopt;
    std::string_view a = text.substr(0, dash), b = text.substr(dash + 1);
    Spec spec;
    if (!a.empty() && !(spec.first = number(a))) return std::nullopt;
    if (!b.empty() && !(spec.last = number(b))) return std::nullopt;
    if (!spec.first && !spec.last) return std::nullopt;   // "-" alone
    if (spec.first && spec.last && *spec.last < *spec.first) return std::nullopt;
    return spec;
}

// "bytes=spec, spec"; empty optional when anything is off.
std::optional<std::vector<Spec>> parse_specs(std::string_view value, std::size_t max_ranges)
{
    std::size_t eq = value.find('=');
    if (eq == std::string_view::npos || !iequals(value.substr(0, eq), "bytes"))
        return std::nullopt;
    std::vector<Spec> specs;
    bool bad = any_list_element(value.substr(eq + 1), [&](std::string_view item) {
        std::optional<Spec> spec = parse_spec(item);
        if (!spec || specs.size() == max_ranges) return true;
        specs.push_back(*spec);
        return false;
    });
    if (bad || specs.empty()) return std::nullopt;
    return specs;
}

// The bytes a spec selects of `size` (> 0), or nothing if unsatisfiable.
std::optional<ByteSpan> resolve(const Spec& s, std::uint64_t size)
{
    if (!s.first) {   // the last N bytes, or all of them when N >= size
        if (*s.last == 0) return std::nullopt;
        std::uint64_t n = std::min(*s.last, size);
        return ByteSpan{size - n, n};
    }
    if (*s.first >= size) return std::nullopt;
    std::uint64_t last = s.last ? std::min(*s.last, size - 1) : size - 1;
    return ByteSpan{*s.first, last - *s.first + 1};
}

// Sorts and merges overlapping or touching spans in place.
void coalesce(std::vector<ByteSpan>& spans)
{
    std::sort(spans.begin(), spans.end(),
              [](const ByteSpan& a, const ByteSpan& b) { return a.first < b.first; });
    std::size_t out = 0;
    for (std::size_t i = 1; i < spans.size(); ++i) {
        ByteSpan& prev = spans[out];
        std::uint64_t prev_end = prev.first + prev.length;   // one past
        if (spans[i].first <= prev_end) {
            prev.length = std::max(prev_end, spans[i].first + spans[i].length) - prev.first;
        } else {
            spans[++out] = spans[i];
        }
    }
    spans.resize(out + 1);
}

// RFC 9110 14.1.2: of an empty representation only a suffix-range of a
// non-zero length is satisfiable, and it selects nothing, so the answer is
// the (empty) whole; anything else cannot be satisfied.
RangePlan plan_empty(const std::vector<Spec>& specs)
{
    RangePlan plan;
    for (const Spec& s : specs)
        if (!s.first && *s.last > 0) return plan;   // whole
    plan.kind = RangeKind::unsatisfiable;
    return plan;
}

}  // namespace

RangePlan plan_ranges(std::string_view value, std::uint64_t size, std::size_t max_ranges)
{
    RangePlan plan;
    std::optional<std::vector<Spec>> specs = parse_specs(value, max_ranges);
    if (!specs) return plan;   // whole
    if (size == 0) return plan_empty(*specs);
    std::uint64_t total = 0;
    for (const Spec& s : *specs) {
        std::optional<ByteSpan> span = resolve(s, size);
        if (!span) continue;
        total += span->length;   // cannot overflow: both terms are <= size
        if (total > size) {
            plan.spans.clear();
            return plan;   // whole
        }
        plan.spans.push_back(*span);
    }
    if (plan.spans.empty()) {
        plan.kind = RangeKind::unsatisfiable;
        return plan;
    }
    coalesce(plan.spans);
    plan.kind = RangeKind::partial;
    return plan;
}

std::string content_range(const ByteSpan& span, std::uint64_t size)
{
    return std::to_string(span.first) + "-" + std::to_string(span.first + span.length - 1) + "/" +
           std::to_string(size);
}

}  // namespace preforkd::http
