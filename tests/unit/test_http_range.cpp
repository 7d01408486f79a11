// test_http_range.cpp - what a Range field asks of a representation.
//
// One table: a field value and a length in, the plan out (200, 206 with the
// spans that will be sent, or 416).  The responder's use of the plan -
// multipart bodies, Content-Range - is tested in test_http_static.cpp.
#include <criterion/criterion.h>

#include <string>
#include <vector>

#include "preforkd/http/range.hpp"

using namespace preforkd::http;

namespace {

struct Case {
    const char* range;
    std::uint64_t size;
    RangeKind kind;
    std::vector<ByteSpan> spans;
};

const RangeKind W = RangeKind::whole, P = RangeKind::partial, U = RangeKind::unsatisfiable;

const Case kCases[] = {
    // single ranges
    {"bytes=0-0", 10, P, {{0, 1}}},
    {"bytes=2-5", 10, P, {{2, 4}}},
    {"bytes=2-", 10, P, {{2, 8}}},
    {"bytes=-3", 10, P, {{7, 3}}},
    {"bytes=-30", 10, P, {{0, 10}}},          // a suffix longer than the file: all of it
    {"bytes=5-99", 10, P, {{5, 5}}},          // last clamped to the end
    {"bytes=0-9", 10, P, {{0, 10}}},
    {"BYTES=1-1", 10, P, {{1, 1}}},           // the unit is case-insensitive
    {"bytes=9-9", 10, P, {{9, 1}}},
    // unsatisfiable
    {"bytes=10-", 10, U, {}},
    {"bytes=10-20", 10, U, {}},
    {"bytes=-0", 10, U, {}},
    {"bytes=10-,-0", 10, U, {}},
    // ignored: whole
    {"bytes=5-2", 10, W, {}},                 // last < first is invalid
    {"bytes=-", 10, W, {}},
    {"bytes=", 10, W, {}},
    {"bytes=a-b", 10, W, {}},
    {"bytes=1-2-3", 10, W, {}},
    {"bytes= 1 -2", 10, W, {}},
    {"bytes=0x1-2", 10, W, {}},
    {"bytes 1-2", 10, W, {}},
    {"items=1-2", 10, W, {}},
    {"bytes=0-1,zz", 10, W, {}},
    // any number of digits, saturating at 2^64-1
    {"bytes=0000000000000000001-2", 10, P, {{1, 2}}},   // leading zeros are valid
    {"bytes=00000000000000000000000000000-0", 10, P, {{0, 1}}},
    {"bytes=9999999999999999999-", 10, U, {}},
    {"bytes=10000000000000000000-", 10, U, {}},
    {"bytes=99999999999999999999999999-", 10, U, {}},   // saturated: still beyond the end
    {"bytes=18446744073709551615-18446744073709551616", 10, U, {}},
    {"bytes=0-99999999999999999999999999", 10, P, {{0, 10}}},
    {"bytes=-99999999999999999999999999", 10, P, {{0, 10}}},
    {"bytes=3-99999999999999999999999999,0-0", 10, P, {{0, 1}, {3, 7}}},
    {"bytes=99999999999999999999999999-5", 10, W, {}},   // last < first
    // an empty representation: only a non-zero suffix is satisfiable
    {"bytes=0-0", 0, U, {}},
    {"bytes=0-", 0, U, {}},
    {"bytes=-0", 0, U, {}},
    {"bytes=-5", 0, W, {}},
    {"bytes=0-0,-1", 0, W, {}},
    {"bytes=a-b", 0, W, {}},                  // still ignored when malformed
    // several ranges
    {"bytes=0-1,4-5", 10, P, {{0, 2}, {4, 2}}},
    {"bytes=4-5,0-1", 10, P, {{0, 2}, {4, 2}}},     // sorted
    {"bytes=0-1, 4-5 ,\t8-", 10, P, {{0, 2}, {4, 2}, {8, 2}}},
    {"bytes=0-3,2-5", 10, P, {{0, 6}}},             // overlapping: merged
    {"bytes=0-1,2-3", 10, P, {{0, 4}}},             // adjacent: merged
    {"bytes=0-1,3-3", 10, P, {{0, 2}, {3, 1}}},     // a gap: kept apart
    {"bytes=1-1,1-1", 10, P, {{1, 1}}},
    {"bytes=-2,0-0", 10, P, {{0, 1}, {8, 2}}},
    {"bytes=0-0,99-", 10, P, {{0, 1}}},             // unsatisfiable specs dropped
    {"bytes=0-5,3-9", 10, W, {}},                   // 13 bytes asked of 10: whole
    {"bytes=0-,-1", 10, W, {}},
    {"bytes=0-0,1-1,2-2,3-3", 10, P, {{0, 4}}},     // 4 specs: at the limit
    {"bytes=0-0,1-1,2-2,3-3,4-4", 10, W, {}},       // 5: over it
};

constexpr std::size_t kMaxRanges = 4;

std::string show(const RangePlan& p)
{
    std::string s = p.kind == W ? "whole" : p.kind == P ? "partial" : "unsatisfiable";
    for (const ByteSpan& b : p.spans)
        s += " " + std::to_string(b.first) + "+" + std::to_string(b.length);
    return s;
}

}  // namespace

Test(http_range, plans)
{
    for (const Case& c : kCases) {
        RangePlan p = plan_ranges(c.range, c.size, kMaxRanges);
        cr_expect(p.kind == c.kind && p.spans == c.spans, "[%s] of %llu: %s", c.range,
                  (unsigned long long)c.size, show(p).c_str());
    }
}

Test(http_range, max_ranges_zero_turns_ranges_off)
{
    cr_expect(plan_ranges("bytes=0-0", 10, 0).kind == RangeKind::whole);
}

Test(http_range, content_range_values)
{
    cr_expect_eq(content_range({0, 1}, 10), "0-0/10");
    cr_expect_eq(content_range({7, 3}, 10), "7-9/10");
}
