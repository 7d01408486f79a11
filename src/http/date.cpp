// http/date.cpp - HTTP-date formatting and parsing.
//
// Written by hand instead of strftime/strptime: those follow the process
// locale, and an HTTP-date is always English.  The day and month names are
// the only tables; parsing walks the text with a small cursor that fails
// closed on the first unexpected byte.
#include "preforkd/http/date.hpp"

#include <algorithm>
#include <array>
#include <cstdint>

#include "preforkd/http/fields.hpp"

namespace preforkd::http {
namespace {

constexpr std::array<std::string_view, 7> kDays = {"Sun", "Mon", "Tue", "Wed",
                                                   "Thu", "Fri", "Sat"};
constexpr std::array<std::string_view, 7> kLongDays = {
    "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"};
constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

class Cursor {
public:
    explicit Cursor(std::string_view s) : s_(s) {}

    bool literal(std::string_view lit)
    {
        if (s_.substr(0, lit.size()) != lit) return false;
        s_.remove_prefix(lit.size());
        return true;
    }

    // Exactly `width` digits.
    bool number(int width, int& out)
    {
        if (s_.size() < static_cast<std::size_t>(width)) return false;
        out = 0;
        for (int i = 0; i < width; ++i) {
            char c = s_[i];
            if (c < '0' || c > '9') return false;
            out = out * 10 + (c - '0');
        }
        s_.remove_prefix(width);
        return true;
    }

    // One name out of a table; the index in `out`.
    template <std::size_t N>
    bool name(const std::array<std::string_view, N>& table, int& out)
    {
        for (std::size_t i = 0; i < N; ++i) {
            if (literal(table[i])) {
                out = static_cast<int>(i);
                return true;
            }
        }
        return false;
    }

    bool at_end() const { return s_.empty(); }

private:
    std::string_view s_;
};

struct Fields {
    int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
};

bool time_of_day(Cursor& c, Fields& f)
{
    return c.number(2, f.hour) && c.literal(":") && c.number(2, f.minute) && c.literal(":") &&
           c.number(2, f.second);
}

// "Sun, 06 Nov 1994 08:49:37 GMT"
bool imf_fixdate(Cursor c, Fields& f)
{
    int wday;
    return c.name(kDays, wday) && c.literal(", ") && c.number(2, f.day) && c.literal(" ") &&
           c.name(kMonths, f.month) && c.literal(" ") && c.number(4, f.year) &&
           c.literal(" ") && time_of_day(c, f) && c.literal(" GMT") && c.at_end();
}

// "Sunday, 06-Nov-94 08:49:37 GMT".  A two-digit year more than 50 years
// in the future means the previous century (RFC 9110 5.6.7); the window is
// the 100 years ending 50 years from now, so that from 2051 on "05" reads
// as 2105 rather than 2005, a century back.
bool rfc850_date(Cursor c, Fields& f)
{
    int wday, yy;
    if (!(c.name(kLongDays, wday) && c.literal(", ") && c.number(2, f.day) && c.literal("-") &&
          c.name(kMonths, f.month) && c.literal("-") && c.number(2, yy) && c.literal(" ") &&
          time_of_day(c, f) && c.literal(" GMT") && c.at_end()))
        return false;
    time_t now = time(nullptr);
    struct tm tm_now;
    gmtime_r(&now, &tm_now);
    int this_year = tm_now.tm_year + 1900;
    f.year = this_year - this_year % 100 + yy;
    if (f.year > this_year + 50) f.year -= 100;
    if (f.year <= this_year - 50) f.year += 100;
    return true;
}

// "Sun Nov  6 08:49:37 1994" (day padded with a space) - C's asctime().
bool asctime_date(Cursor c, Fields& f)
{
    int wday;
    if (!(c.name(kDays, wday) && c.literal(" ") && c.name(kMonths, f.month) && c.literal(" ")))
        return false;
    bool day = c.literal(" ") ? c.number(1, f.day) : c.number(2, f.day);
    return day && c.literal(" ") && time_of_day(c, f) && c.literal(" ") &&
           c.number(4, f.year) && c.at_end();
}

std::optional<time_t> to_time(const Fields& f)
{
    if (f.day < 1 || f.day > 31 || f.hour > 23 || f.minute > 59 || f.second > 60)
        return std::nullopt;
    struct tm tm = {};
    tm.tm_year = f.year - 1900;
    tm.tm_mon = f.month;
    tm.tm_mday = f.day;
    tm.tm_hour = f.hour;
    tm.tm_min = f.minute;
    tm.tm_sec = f.second;
    time_t t = timegm(&tm);
    // timegm normalises "31 Feb" into March; such a date is not a date.
    if (t == static_cast<time_t>(-1) || tm.tm_mday != f.day) return std::nullopt;
    return t;
}

// `value` in at least `width` digits, zero-padded on the left.
void append_padded(std::string& out, int value, std::size_t width)
{
    std::size_t at = out.size();
    append_unsigned(out, std::uint64_t(std::max(value, 0)));
    std::size_t written = out.size() - at;
    if (written < width)
        out.insert(at, width - written, '0');
}

}  // namespace

// Digits by hand rather than snprintf(): vfprintf's frames are deep, and a
// worker keeps every stack page it has ever touched (see worker.cpp).
std::string format_http_date(time_t t)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    std::string out;
    out.reserve(29);
    out += kDays[std::size_t(tm.tm_wday)];
    out += ", ";
    append_padded(out, tm.tm_mday, 2);
    out += ' ';
    out += kMonths[std::size_t(tm.tm_mon)];
    out += ' ';
    append_padded(out, tm.tm_year + 1900, 4);
    out += ' ';
    append_padded(out, tm.tm_hour, 2);
    out += ':';
    append_padded(out, tm.tm_min, 2);
    out += ':';
    append_padded(out, tm.tm_sec, 2);
    out += " GMT";
    return out;
}

// time(2) is a vDSO read; the formatting is what costs, so it is done at
// most once a second per process.
const std::string& current_http_date()
{
    thread_local time_t cached_at = -1;
    thread_local std::string text;  // thread_local: see worker.cpp
    time_t now = time(nullptr);
    if (now != cached_at) {
        text = format_http_date(now);
        cached_at = now;
    }
    return text;
}

std::optional<time_t> parse_http_date(std::string_view text)
{
    Fields f;
    Cursor c(text);
    if (imf_fixdate(c, f) || rfc850_date(c, f) || asctime_date(c, f)) return to_time(f);
    return std::nullopt;
}

}  // namespace preforkd::http
