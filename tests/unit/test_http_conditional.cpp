// test_http_conditional.cpp - preconditions, Accept-Encoding and HTTP-dates.
//
// Pure functions of request fields, so every row is a few header lines and
// the answer a client would get: 200 (proceed), 304 or 412; whether gzip is
// acceptable; which instant a date names.  A fixed representation stands in
// for a file: ETag "\"abc\"", modified at 784111777 (Sun, 06 Nov 1994
// 08:49:37 GMT).
#include <criterion/criterion.h>

#include <string>

#include "preforkd/http/conditional.hpp"
#include "preforkd/http/date.hpp"
#include "preforkd/http/encoding.hpp"

using namespace preforkd::http;

namespace {

constexpr const char* kEtag = "\"abc\"";
constexpr time_t kMtime = 784111777;
constexpr const char* kAt = "Sun, 06 Nov 1994 08:49:37 GMT";
constexpr const char* kBefore = "Sun, 06 Nov 1994 08:49:36 GMT";
constexpr const char* kAfter = "Sun, 06 Nov 1994 08:49:38 GMT";

Request with_fields(const std::string& fields)
{
    Request r;
    std::string raw = "GET / HTTP/1.1\r\nHost: a\r\n" + fields + "\r\n";
    ParseResult p = parse(raw, Limits{}, r);
    cr_assert(p.state == ParseState::complete, "[%s]: %d %s", fields.c_str(), p.status,
              p.reason.c_str());
    return r;
}

int answer(const std::string& fields)
{
    switch (check_preconditions(with_fields(fields), kEtag, kMtime)) {
    case Precondition::failed: return 412;
    case Precondition::not_modified: return 304;
    case Precondition::proceed: break;
    }
    return 200;
}

std::string line(const char* name, const std::string& value)
{
    return std::string(name) + ": " + value + "\r\n";
}

}  // namespace

Test(http_conditional, rfc_9110_13_2_2)
{
    struct {
        std::string fields;
        int status;
    } cases[] = {
        {"", 200},
        // step 1: If-Match, strong comparison
        {line("If-Match", kEtag), 200},
        {line("If-Match", "\"x\" , \"abc\""), 200},
        {line("If-Match", "*"), 200},
        {line("If-Match", "\"x\""), 412},
        {line("If-Match", "W/\"abc\""), 412},
        {line("If-Match", "\"ABC\""), 412},
        {line("If-Match", "abc"), 412},
        {line("If-Match", "\"x\"") + line("If-Match", kEtag), 200},
        // step 2: If-Unmodified-Since, only without If-Match
        {line("If-Unmodified-Since", kAt), 200},
        {line("If-Unmodified-Since", kAfter), 200},
        {line("If-Unmodified-Since", kBefore), 412},
        {line("If-Unmodified-Since", "garbage"), 200},
        {line("If-Unmodified-Since", std::string(kBefore) + ", " + kBefore), 200},
        {line("If-Unmodified-Since", kBefore) + line("If-Unmodified-Since", kBefore), 200},
        {line("If-Match", kEtag) + line("If-Unmodified-Since", kBefore), 200},
        {line("If-Match", "\"x\"") + line("If-Unmodified-Since", kAfter), 412},
        // step 3: If-None-Match, weak comparison
        {line("If-None-Match", kEtag), 304},
        {line("If-None-Match", "W/\"abc\""), 304},
        {line("If-None-Match", "*"), 304},
        {line("If-None-Match", "\"x\""), 200},
        {line("If-None-Match", "\"x\"") + line("If-None-Match", "\"abc\""), 304},
        // step 4: If-Modified-Since, only without If-None-Match
        {line("If-Modified-Since", kAt), 304},
        {line("If-Modified-Since", kAfter), 304},
        {line("If-Modified-Since", kBefore), 200},
        {line("If-Modified-Since", "Sunday, 06-Nov-94 08:49:37 GMT"), 304},
        {line("If-Modified-Since", "Sun Nov  6 08:49:37 1994"), 304},
        {line("If-Modified-Since", "yesterday"), 200},
        {line("If-None-Match", "\"x\"") + line("If-Modified-Since", kAt), 200},
        {line("If-None-Match", kEtag) + line("If-Modified-Since", kBefore), 304},
        // steps 1-2 before 3-4
        {line("If-Match", "\"x\"") + line("If-None-Match", kEtag), 412},
        {line("If-Unmodified-Since", kBefore) + line("If-Modified-Since", kAt), 412},
        {line("If-Match", kEtag) + line("If-None-Match", kEtag), 304},
        {line("If-Unmodified-Since", kAt) + line("If-Modified-Since", kAt), 304},
    };
    for (const auto& c : cases)
        cr_expect_eq(answer(c.fields), c.status, "[%s] -> %d", c.fields.c_str(),
                     answer(c.fields));
}

Test(http_conditional, if_range)
{
    struct {
        std::string fields;
        bool holds;
    } cases[] = {
        {"", true},
        {line("If-Range", kEtag), true},
        {line("If-Range", "\"x\""), false},
        {line("If-Range", "W/\"abc\""), false},   // weak tags never validate a range
        {line("If-Range", kAt), true},
        {line("If-Range", kAfter), false},        // a date must match exactly
        {line("If-Range", kBefore), false},
        {line("If-Range", "garbage"), false},
    };
    for (const auto& c : cases)
        cr_expect_eq(if_range_holds(with_fields(c.fields), kEtag, kMtime), c.holds, "[%s]",
                     c.fields.c_str());
}

Test(http_conditional, accept_encoding_gzip)
{
    struct {
        const char* value;
        bool gzip;
    } cases[] = {
        {"gzip", true},
        {"GZip", true},
        {"x-gzip", true},
        {"deflate, gzip;q=1.0", true},
        {"gzip;q=1", true},
        {"gzip;q=0.001", true},
        {"gzip ; Q=0.5", true},
        {"gzip;level=1;q=0.2", true},
        {"gzip;q=0", false},
        {"gzip;q=0.", false},
        {"gzip;q=0.0", false},
        {"gzip;q=0.000", false},
        {"gzip;q=1.5", false},        // not a qvalue: the element is ignored
        {"gzip;q=0.0001", false},
        {"gzip;q=", false},
        {"gzip;q=2", false},
        {"gzipx", false},
        {"br, deflate", false},
        {"identity", false},
        {"*", true},
        {"*;q=0", false},
        {"*, gzip;q=0", false},       // named refusal beats the wildcard
        {"gzip;q=0, *", false},
        {"*;q=0, gzip", true},
        {"", false},
        {" , ,gzip", true},
    };
    for (const auto& c : cases)
        cr_expect_eq(accepts_gzip(with_fields(line("Accept-Encoding", c.value))), c.gzip, "[%s]",
                     c.value);
    cr_expect_not(accepts_gzip(with_fields("")), "no Accept-Encoding: identity");
}

Test(http_conditional, http_dates_in_all_three_formats)
{
    struct {
        const char* text;
        time_t when;
    } good[] = {
        {"Sun, 06 Nov 1994 08:49:37 GMT", 784111777},
        {"Sunday, 06-Nov-94 08:49:37 GMT", 784111777},
        {"Sun Nov  6 08:49:37 1994", 784111777},
        {"Thu, 01 Jan 1970 00:00:00 GMT", 0},
        {"Friday, 31-Dec-99 23:59:59 GMT", 946684799},
        {"Thu Jan  1 00:00:00 1970", 0},
        {"Sat, 29 Feb 2020 23:59:59 GMT", 1583020799},   // leap day
        {"Sat Feb 29 23:59:59 2020", 1583020799},
        {"Tue, 19 Jan 2038 03:14:08 GMT", 2147483648},   // past 32-bit time_t
        {"Fri Dec 31 23:59:59 1999", 946684799},
        {"Fri Dec 10 00:00:00 1999", 944784000},          // two-digit day in asctime
    };
    for (const auto& c : good) {
        std::optional<time_t> t = parse_http_date(c.text);
        cr_expect(t && *t == c.when, "%s -> %lld", c.text, t ? (long long)*t : -1LL);
    }
    const char* bad[] = {
        "",
        "Sun, 06 Nov 1994 08:49:37",        // no GMT
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 6 Nov 1994 08:49:37 GMT",     // one-digit day in IMF-fixdate
        "Sun, 06 Nov 94 08:49:37 GMT",
        "Sun,06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 8:49:37 GMT",
        "Sun, 31 Feb 1994 08:49:37 GMT",    // no such day
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:60:00 GMT",
        "sun, 06 nov 1994 08:49:37 gmt",    // names are case-sensitive
        "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT ",   // trailing bytes
        "Sunday, 06-Nov-1994 08:49:37 GMT", // RFC 850 has two-digit years
        "Sun, 06-Nov-94 08:49:37 GMT",      // and long day names
        "Sun Nov 6 08:49:37 1994",          // asctime pads the day with a space
        "Sun Nov  6 08:49:37 94",
        "Sun Nov  6 08:49:37 1994 GMT",
        "784111777",
    };
    for (const char* d : bad) cr_expect_not(parse_http_date(d).has_value(), "[%s]", d);
}

Test(http_conditional, rfc_850_years_are_within_fifty_years)
{
    // RFC 9110 5.6.7: a two-digit year that looks more than 50 years in the
    // future is in the past century.
    time_t now = time(nullptr);
    struct tm tm;
    gmtime_r(&now, &tm);
    int year = tm.tm_year + 1900;
    auto year_of = [](int yy) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "Monday, 01-Jan-%02d 00:00:00 GMT", yy);
        std::optional<time_t> t = parse_http_date(buf);   // the weekday is not checked
        cr_assert(t.has_value(), "%s", buf);
        struct tm out;
        gmtime_r(&*t, &out);
        return out.tm_year + 1900;
    };
    cr_expect_eq(year_of(year % 100), year);
    cr_expect_eq(year_of((year + 40) % 100), year + 40);
    cr_expect_eq(year_of((year + 60) % 100), year - 40);
}

Test(http_conditional, format_round_trips)
{
    for (time_t t : {time_t(0), time_t(784111777), time_t(1583020799), time_t(4102444800)}) {
        std::string s = format_http_date(t);
        std::optional<time_t> back = parse_http_date(s);
        cr_expect(back && *back == t, "%s", s.c_str());
    }
}
