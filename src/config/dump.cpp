// dump.cpp - the effective configuration as text (preforkd -T), and the text
// a reload's checking child hands back to the master.
//
// The dump walks the key table, so a key with a descriptor is printed
// without a line of code here; only kinds with their own syntax (return,
// error_page, locations ...) have a printer.  Every key is present, every
// default filled in, included files merged, and the text loads back to an
// equal Config (tests/unit/test_config_schema.cpp holds it to that for every
// key).  Strings are escaped so that the output stays one setting per line
// and reads back byte for byte.
#include "preforkd/config.hpp"

#include <algorithm>
#include <climits>
#include <cstring>
#include <cstdio>
#include <sstream>

#include "preforkd/config/schema.hpp"
#include "preforkd/config/values.hpp"

namespace preforkd::config {
namespace {

constexpr const char* kPositionMark = "#@ position ";

using schema::Field;
using schema::Key;
using schema::Kind;
using schema::Slot;

std::string literal(std::string_view s)
{
    std::string out = "\"";
    for (char ch : s) {
        switch (ch) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\f': out += "\\f"; break;
        default:
            if ((unsigned char)ch < 0x20 || ch == 0x7f) {
                char hex[8];
                std::snprintf(hex, sizeof hex, "\\x%02x", unsigned((unsigned char)ch));
                out += hex;
            } else {
                out += ch;
            }
        }
    }
    return out + "\"";
}

template <class T, class Print>
std::string list_of(const std::vector<T>& items, char open, char close, Print print)
{
    std::string out(1, open);
    for (std::size_t i = 0; i < items.size(); ++i)
        out += (i ? ", " : " ") + print(items[i]);
    return out + (items.empty() ? "" : " ") + close;
}

std::string strings_literal(const std::vector<std::string>& items, char open, char close)
{
    return list_of(items, open, close, [](const std::string& s) { return literal(s); });
}

// libconfig reads an integer beyond 32 bits only with the L suffix.
std::string int_literal(long n)
{
    return std::to_string(n) + (n > INT_MAX || n < INT_MIN ? "L" : "");
}

std::string return_literal(const Return& r)
{
    if (r.status == 0)
        return "( )";
    return "( " + std::to_string(r.status) + (r.url.empty() ? "" : ", " + literal(r.url)) + " )";
}

std::string error_pages_literal(const std::vector<ErrorPage>& pages)
{
    return list_of(pages, '(', ')', [](const ErrorPage& p) {
        std::string codes =
            list_of(p.status, '[', ']', [](int code) { return std::to_string(code); });
        return "{ status = " + codes + "; page = " + literal(p.page) + "; }";
    });
}

class Printer {
public:
    Printer(std::ostream& out, const Config& config) : out_(out), config_(config) {}
    void keys(std::string_view group, unsigned scope, const Slot& slot, int indent);
    std::string value(const Key& k, const Field& f, int indent);

private:
    std::string sites(const std::vector<Site>& all, int indent);
    std::string locations(std::vector<Location>& all, Site& site, int indent);

    std::string listen() const;

    std::ostream& out_;
    const Config& config_;
};

// The keys of `group` (global scope) or of `scope` (a site or location).
void Printer::keys(std::string_view group, unsigned scope, const Slot& slot, int indent)
{
    std::string pad(std::size_t(indent), ' ');
    for (const Key& k : schema::keys()) {
        bool ours = scope == schema::global ? k.scope == scope && k.group == group
                                            : (k.scope & scope) != 0;
        if (!ours || k.kind == Kind::include || k.kind == Kind::location_path ||
            k.kind == Kind::locations)
            continue;
        if (k.kind == Kind::group) {
            out_ << "\n" << pad << k.name << " = {\n";
            keys(k.name, scope, slot, indent + 2);
            out_ << pad << "};\n";
            continue;
        }
        out_ << (k.kind == Kind::sites ? "\n" : "") << pad << k.name << " = "
             << value(k, k.field(slot), indent) << ";\n";
    }
}

// Plain strings, and a group for an entry with options.
std::string Printer::listen() const
{
    std::vector<std::size_t> index(config_.listen.size());
    for (std::size_t i = 0; i < index.size(); ++i)
        index[i] = i;
    return list_of(index, '(', ')', [&](std::size_t i) {
        const ListenOptions& o = listen_options_of(config_, i);
        if (o == ListenOptions{})
            return literal(config_.listen[i]);
        std::string entry = "{ address = " + literal(config_.listen[i]) + ";";
        if (o.tls)
            entry += " tls = true;";
        if (o.proxy_protocol)
            entry += " proxy_protocol = true;";
        if (!o.proxy_trusted.empty())
            entry += " proxy_trusted = " +
                     list_of(o.proxy_trusted, '[', ']', [](const Cidr& c) { return literal(c.text); }) +
                     ";";
        return entry + " }";
    });
}

std::string Printer::value(const Key& k, const Field& f, int indent)
{
    if (auto* p = std::get_if<int*>(&f))
        return std::to_string(**p);
    if (auto* p = std::get_if<long*>(&f))
        return int_literal(**p);
    if (auto* p = std::get_if<bool*>(&f))
        return **p ? "true" : "false";
    if (auto* p = std::get_if<std::string*>(&f))
        return literal(**p);
    if (auto* p = std::get_if<std::vector<std::string>*>(&f))
        return k.kind == Kind::listen ? listen() : strings_literal(**p, '[', ']');
    if (auto* p = std::get_if<AccessFormat*>(&f))
        return literal(schema::name_of(k.choices, int(**p)));
    if (auto* p = std::get_if<std::vector<Cidr>*>(&f))
        return list_of(**p, '[', ']', [](const Cidr& c) { return literal(c.text); });
    if (auto* p = std::get_if<Return*>(&f))
        return return_literal(**p);
    if (auto* p = std::get_if<std::vector<ErrorPage>*>(&f))
        return error_pages_literal(**p);
    if (auto* p = std::get_if<Expires*>(&f))
        return literal(values::expires_text(**p));
    if (auto* p = std::get_if<std::vector<Site>*>(&f))
        return sites(**p, indent);
    if (auto* p = std::get_if<SiteTls*>(&f))
        return (*p)->certificate.empty() ? "( )"
                                         : "{ certificate = " + literal((*p)->certificate) +
                                               "; key = " + literal((*p)->key) + "; }";
    return "";
}

std::string Printer::sites(const std::vector<Site>& all, int indent)
{
    if (all.empty())
        return "( )";
    std::ostringstream text;
    Printer inner(text, config_);
    text << "(";
    for (std::size_t i = 0; i < all.size(); ++i) {
        Site site = all[i];
        text << (i ? ",\n" : "\n") << std::string(std::size_t(indent + 2), ' ') << "{\n";
        Slot slot{nullptr, &site, nullptr, &site.rules};
        inner.keys("", schema::site, slot, indent + 4);
        text << inner.locations(site.locations, site, indent + 4);
        text << std::string(std::size_t(indent + 2), ' ') << "}";
    }
    text << "\n" << std::string(std::size_t(indent), ' ') << ")";
    return text.str();
}

std::string Printer::locations(std::vector<Location>& all, Site& site, int indent)
{
    std::string pad(std::size_t(indent), ' ');
    std::ostringstream text;
    Printer inner(text, config_);
    text << pad << "locations = (";
    for (std::size_t i = 0; i < all.size(); ++i) {
        Location& loc = all[i];
        text << (i ? ",\n" : "\n") << pad << "  {\n"
             << pad << "    path = " << literal(values::location_path_text(loc)) << ";\n";
        inner.keys("", schema::location, Slot{nullptr, &site, &loc, &loc.rules}, indent + 4);
        text << pad << "  }";
    }
    text << (all.empty() ? " );\n" : "\n" + pad + ");\n");
    return text.str();
}

}  // namespace

std::string dump(const Config& config)
{
    Config c = config;   // the key table reaches fields through mutable slots
    std::ostringstream o;
    o << "# preforkd: effective configuration"
      << (c.file.empty() ? "" : " of " + literal(c.file)) << ", every default filled in\n";
    Printer(o, c).keys("", schema::global, Slot{&c}, 0);
    return o.str();
}

// The positions messages name are not values, so dump() leaves them out;
// the text a reload's checking child hands back carries them as comment
// lines that libconfig skips and load_checked() reads back, so a reload's
// messages name the administrator's file and line, not the dump's.
std::string dump_for_reload(const Config& config)
{
    auto line = [](const std::string& what, std::string where) {
        std::replace(where.begin(), where.end(), '\n', ' ');
        return std::string(kPositionMark) + what + " " + where + "\n";
    };
    std::string out = dump(config);
    if (!config.tls.ticket_key_file_where.empty())
        out += line("ticket_key_file", config.tls.ticket_key_file_where);
    for (std::size_t i = 0; i < config.sites.size(); ++i)
        if (!config.sites[i].tls.where.empty())
            out += line("site " + std::to_string(i), config.sites[i].tls.where);
    return out;
}

void restore_positions(Config& config, const std::string& dump_text)
{
    std::istringstream in(dump_text);
    std::string l;
    while (std::getline(in, l)) {
        if (l.rfind(kPositionMark, 0) != 0)
            continue;
        std::istringstream fields(l.substr(std::strlen(kPositionMark)));
        std::string what, where;
        std::size_t site = 0;
        fields >> what;
        if (what == "site" && !(fields >> site))
            continue;
        fields >> std::ws;
        std::getline(fields, where);
        if (what == "ticket_key_file")
            config.tls.ticket_key_file_where = where;
        else if (what == "site" && site < config.sites.size())
            config.sites[site].tls.where = where;
    }
}

std::string schema::value_text(const Key& k, const Config& config)
{
    Config c = config;
    std::ostringstream unused;
    return k.field && k.scope == global ? Printer(unused, c).value(k, k.field(Slot{&c}), 0) : "";
}

std::string schema::default_text(const Key& k) { return value_text(k, Config{}); }

}  // namespace preforkd::config
