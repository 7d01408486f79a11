// http/encoding.cpp - reading Accept-Encoding for gzip.
//
// Each list element is "coding *( OWS ; OWS param )"; only the q parameter
// means anything here.  qvalues are read in thousandths as integers so that
// "q=0.000" is exactly zero and no floating point is involved.  An explicit
// "gzip;q=0" wins over "*": the client refused gzip by name.
#include "preforkd/http/encoding.hpp"

#include <algorithm>
#include <optional>

#include "preforkd/http/fields.hpp"

namespace preforkd::http {
namespace {

// qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ), in 1/1000.
std::optional<int> qvalue(std::string_view v)
{
    if (v.empty() || (v[0] != '0' && v[0] != '1')) return std::nullopt;
    int whole = v[0] - '0', frac = 0;
    if (v.size() > 1) {
        if (v[1] != '.' || v.size() > 5) return std::nullopt;
        for (std::size_t i = 2; i < 5; ++i) {
            char c = i < v.size() ? v[i] : '0';
            if (c < '0' || c > '9') return std::nullopt;
            frac = frac * 10 + (c - '0');
        }
    }
    if (whole == 1 && frac != 0) return std::nullopt;
    return whole * 1000 + frac;
}

// The weight of one element ("gzip;q=0.5" -> 500); 1000 without q.
std::optional<int> weight(std::string_view params)
{
    int q = 1000;
    while (!params.empty()) {
        std::size_t semi = params.find(';');
        std::string_view p = trim_ows(params.substr(0, semi));
        params = semi == std::string_view::npos ? std::string_view() : params.substr(semi + 1);
        std::size_t eq = p.find('=');
        if (eq == std::string_view::npos) continue;
        if (!iequals(trim_ows(p.substr(0, eq)), "q")) continue;
        std::optional<int> v = qvalue(trim_ows(p.substr(eq + 1)));
        if (!v) return std::nullopt;
        q = *v;
    }
    return q;
}

struct Weights {
    int gzip = -1;   // -1: not listed
    int star = -1;
};

void weigh(std::string_view element, Weights& w)
{
    std::size_t semi = element.find(';');
    std::string_view coding = trim_ows(element.substr(0, semi));
    std::optional<int> q =
        weight(semi == std::string_view::npos ? std::string_view() : element.substr(semi + 1));
    if (!q) return;
    if (iequals(coding, "gzip") || iequals(coding, "x-gzip"))
        w.gzip = std::max(w.gzip, *q);
    else if (coding == "*")
        w.star = std::max(w.star, *q);
}

}  // namespace

bool accepts_gzip(const Request& req)
{
    Weights w;
    for (const Header& h : req.headers) {
        if (!iequals(h.name, "Accept-Encoding")) continue;
        any_list_element(h.value, [&](std::string_view element) {
            weigh(element, w);
            return false;
        });
    }
    return w.gzip >= 0 ? w.gzip > 0 : w.star > 0;
}

}  // namespace preforkd::http
