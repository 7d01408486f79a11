// test_status_page.cpp - the HTTP status page without a daemon: the
// scoreboard read into a Snapshot, the mod_status `?auto` text made from
// one (struct in, text out), and a status location's answers through
// http::answer() with a renderer standing in for the worker's.
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string>
#include <sys/mman.h>

#include "preforkd/control.hpp"
#include "preforkd/http/request.hpp"
#include "preforkd/http/rules.hpp"
#include "preforkd/http/site.hpp"
#include "preforkd/http/status.hpp"
#include "preforkd/scoreboard.hpp"

namespace control = preforkd::control;
namespace http = preforkd::http;
namespace scoreboard = preforkd::scoreboard;

namespace {

control::WorkerRow row(int slot, const char* state, std::uint32_t generation = 3,
                      std::uint64_t requests = 0, std::uint64_t bytes = 0)
{
    control::WorkerRow w;
    w.slot = slot;
    w.pid = 900 + slot;
    w.generation = generation;
    w.state = state;
    w.requests = requests;
    w.bytes = bytes;
    return w;
}

control::Snapshot sample()
{
    control::Snapshot s;
    s.version = "1.2.3";
    s.generation = 3;
    s.uptime = 600;
    s.max = 6;
    s.workers = {row(0, "draining", 2, 10, 5000), row(1, "idle", 3, 3, 300),
                 row(2, "writing", 3, 2, 1000), row(4, "keepalive", 3, 5, 0)};
    return s;
}

// The value of "Key: value" in a short report, as a monitoring plugin
// reads it; "" when the key is absent.
std::string value_of(const std::string& report, const std::string& key)
{
    std::size_t at = report.find(key + ": ");
    if (at == std::string::npos || (at > 0 && report[at - 1] != '\n'))
        return "";
    at += key.size() + 2;
    return report.substr(at, report.find('\n', at) - at);
}

// The actual text held by name while the assertion reads it (a
// temporary's c_str() would not outlive Criterion's macro).
void same(const std::string& actual, const std::string& want)
{
    cr_assert_str_eq(actual.c_str(), want.c_str());
}

struct Board {
    scoreboard::Board* board = scoreboard::create();
    ~Board() { ::munmap(board, sizeof *board); }
};

}  // namespace

Test(status_page, auto_report_is_mod_status_short_report)
{
    std::string a = control::render_auto(sample());
    cr_assert_str_eq(a.c_str(),
                     "ServerVersion: preforkd/1.2.3\n"
                                "ServerMPM: prefork\n"
                                "ParentServerConfigGeneration: 3\n"
                                "ServerUptimeSeconds: 600\n"
                                "Total Accesses: 20\n"
                                "Total kBytes: 6\n"
                                "Uptime: 600\n"
                                "ReqPerSec: 0.0333333\n"
                                "BytesPerSec: 10.5\n"
                                "BytesPerReq: 315\n"
                                "BusyWorkers: 3\n"
                                "IdleWorkers: 1\n"
                                "Scoreboard: G_W.K.\n");
}

Test(status_page, auto_report_letters_follow_mod_status_key)
{
    control::Snapshot s = sample();
    s.max = 2;
    s.workers = {row(0, "starting"), row(1, "idle"),      row(2, "reading"), row(3, "writing"),
                 row(4, "keepalive"), row(5, "draining"), row(7, "idle")};
    // Past workers.max (a reload lowered it) the line grows to the last live slot.
    same(value_of(control::render_auto(s), "Scoreboard"), "S_RWKG._");
}

Test(status_page, auto_report_leaves_out_rates_without_a_divisor)
{
    control::Snapshot s = sample();
    s.uptime = 0;
    for (control::WorkerRow& w : s.workers)
        w.requests = w.bytes = 0;
    std::string a = control::render_auto(s);
    same(value_of(a, "Total Accesses"), "0");
    same(value_of(a, "Uptime"), "0");
    same(value_of(a, "ReqPerSec"), "");
    same(value_of(a, "BytesPerSec"), "");
    same(value_of(a, "BytesPerReq"), "");
    same(value_of(a, "Scoreboard"), "G_W.K.");
}

Test(status_page, snapshot_of_reads_live_slots_and_the_master_facts)
{
    Board b;
    scoreboard::Facts& m = b.board->master;
    m.pid = 800;
    m.generation = 4;
    m.started_ms = 10000;
    m.started_at = 1795754400;
    m.config_loaded_at = 1795755000;
    m.floor = 3;
    m.floor_configured = 2;
    m.max = 8;
    m.parking = true;
    scoreboard::set_text(m.config_file, "/etc/preforkd/preforkd.conf");
    b.board->parked = 5;
    scoreboard::Slot& w = b.board->slots[2];
    w.pid = 1234;
    w.generation = 3;
    w.state = scoreboard::State::writing;
    w.state_since_ms = 70000;
    w.requests = 17;
    w.bytes = 4096;
    w.sandboxed = scoreboard::kSeccomp | scoreboard::kLandlock;
    scoreboard::set_text(w.client, "192.0.2.9");
    scoreboard::set_text(w.request, "GET /x HTTP/1.1");
    b.board->slots[5].pid = 1240;
    b.board->slots[5].generation = 4;
    b.board->slots[5].state = scoreboard::State::idle;
    b.board->slots[5].state_since_ms = 72000;

    control::Snapshot s = control::snapshot_of(*b.board, 73500);
    cr_assert_eq(s.master, 800);
    cr_assert_eq(s.generation, 4u);
    cr_assert_eq(s.uptime, 63);
    cr_assert_eq(s.started, 1795754400);
    cr_assert_eq(s.config_loaded, 1795755000);
    cr_assert_str_eq(s.config_file.c_str(), "/etc/preforkd/preforkd.conf");
    cr_assert_eq(s.floor, 3);
    cr_assert_eq(s.floor_configured, 2);
    cr_assert_eq(s.max, 8);
    cr_assert(s.parking);
    cr_assert_eq(s.parked, 5);
    cr_assert_eq(s.draining.size(), 1u, "generation 3 still has a worker");
    cr_assert_eq(s.draining[0], 3u);
    cr_assert_eq(s.workers.size(), 2u);
    const control::WorkerRow& r = s.workers[0];
    cr_assert_eq(r.slot, 2);
    cr_assert_eq(r.pid, 1234);
    cr_assert_str_eq(r.state.c_str(), "writing");
    cr_assert_eq(r.seconds, 3);
    cr_assert_eq(r.requests, 17u);
    cr_assert_eq(r.bytes, 4096u);
    cr_assert_str_eq(r.sandbox.c_str(), "seccomp+landlock");
    cr_assert_str_eq(r.client.c_str(), "192.0.2.9");
    cr_assert_str_eq(r.request.c_str(), "GET /x HTTP/1.1");
    cr_assert_eq(s.workers[1].slot, 5);
    cr_assert_str_eq(s.workers[1].state.c_str(), "idle");
}

Test(status_page, page_is_rendered_in_the_format_asked)
{
    Board b;
    b.board->master.generation = 1;
    b.board->slots[0].pid = 77;
    b.board->slots[0].state = scoreboard::State::idle;
    std::string text = control::render_page(*b.board, http::StatusFormat::text);
    std::string json = control::render_page(*b.board, http::StatusFormat::json);
    std::string automatic = control::render_page(*b.board, http::StatusFormat::automatic);
    cr_assert(text.find("pool: 1 workers (0 busy, 1 idle)") != std::string::npos, "%s", text.c_str());
    cr_assert(json.starts_with("{\"version\":") && json.find("\"pid\":77") != std::string::npos,
              "%s", json.c_str());
    same(value_of(automatic, "IdleWorkers"), "1");
    same(value_of(automatic, "Scoreboard").substr(0, 1), "_");
}

Test(status_page, format_names_and_the_auto_query)
{
    cr_assert(http::status_format("text") == http::StatusFormat::text);
    cr_assert(http::status_format("json") == http::StatusFormat::json);
    cr_assert(http::status_format("auto") == http::StatusFormat::automatic);
    cr_assert(http::status_format("off") == http::StatusFormat::off);
    cr_assert(!http::status_format("html"));
    cr_assert(!http::status_format("Text"));
    using F = http::StatusFormat;
    cr_assert(http::requested_format(F::text, "auto") == F::automatic);
    cr_assert(http::requested_format(F::text, "refresh=5&auto") == F::automatic);
    cr_assert(http::requested_format(F::json, "auto=1") == F::automatic);
    cr_assert(http::requested_format(F::text, "") == F::text);
    cr_assert(http::requested_format(F::text, "automatic") == F::text);
    cr_assert(http::requested_format(F::json, "x=auto") == F::json);
}

// ---- a status location through answer() --------------------------------------

namespace {

http::SiteTable status_site(http::StatusFormat format, bool private_only)
{
    http::SiteSpec s;
    s.name = "test";
    s.names = {"test.example"};
    s.files.root = "/nonexistent";
    http::LocationSpec loc{"= /server-status", {}};
    loc.rules.status = format;
    if (private_only)
        loc.rules.access = std::vector<http::AccessRule>{*http::parse_access_rule(true, "127.0.0.0/8"),
                                                         *http::parse_access_rule(false, "0.0.0.0/0")};
    s.locations = {loc};
    return http::SiteTable({s});
}

http::Response ask(const http::SiteTable& t, const std::string& line, const http::StatusSource* source,
                   const char* from = "127.0.0.1")
{
    std::string raw = line + "\r\nHost: test.example\r\n\r\n";
    http::Request req;
    cr_assert(http::parse(raw, http::Limits{}, req).state == http::ParseState::complete);
    sockaddr_storage ss{};
    auto& in = reinterpret_cast<sockaddr_in&>(ss);
    in.sin_family = AF_INET;
    inet_pton(AF_INET, from, &in.sin_addr);
    http::ClientAddress client = http::client_address(ss);
    http::Visit v{t.find(req.host, 0), client, false, http::UnreadBody::discard};
    v.status = source;
    return http::answer(req, v);
}

std::string field(const http::Response& r, const std::string& name)
{
    std::string key = "\r\n" + name + ": ";
    std::size_t at = r.head.find(key);
    if (at == std::string::npos)
        return "";
    at += key.size();
    return r.head.substr(at, r.head.find("\r\n", at) - at);
}

// Names the format it was asked for, as the body.
const http::StatusSource kEcho = [](http::StatusFormat f) {
    return f == http::StatusFormat::json ? std::string("{}\n")
           : f == http::StatusFormat::automatic ? std::string("Total Accesses: 1\n")
                                                : std::string("text\n");
};

}  // namespace

Test(status_page, a_status_location_answers_with_the_renderer_and_no_store)
{
    http::SiteTable t = status_site(http::StatusFormat::json, false);
    http::Response r = ask(t, "GET /server-status HTTP/1.1", &kEcho);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body.c_str(), "{}\n");
    same(field(r, "Content-Type"), "application/json");
    same(field(r, "Content-Length"), "3");
    same(field(r, "Cache-Control"), "no-store");

    http::Response a = ask(t, "GET /server-status?auto HTTP/1.1", &kEcho);
    cr_assert_str_eq(a.body.c_str(), "Total Accesses: 1\n");
    cr_assert(field(a, "Content-Type").starts_with("text/plain"));

    http::Response text = ask(status_site(http::StatusFormat::text, false),
                              "GET /server-status HTTP/1.1", &kEcho);
    cr_assert_str_eq(text.body.c_str(), "text\n");
    same(field(text, "Content-Type"), "text/plain; charset=utf-8");
}

Test(status_page, head_has_the_length_of_get_and_no_body)
{
    http::SiteTable t = status_site(http::StatusFormat::text, false);
    http::Response r = ask(t, "HEAD /server-status HTTP/1.1", &kEcho);
    cr_assert_eq(r.status, 200);
    cr_assert(r.body.empty());
    same(field(r, "Content-Length"), "5");
}

Test(status_page, other_methods_get_405_with_allow)
{
    http::SiteTable t = status_site(http::StatusFormat::text, false);
    for (const char* line : {"POST /server-status HTTP/1.1", "OPTIONS /server-status HTTP/1.1",
                             "DELETE /server-status HTTP/1.1"}) {
        http::Response r = ask(t, line, &kEcho);
        cr_assert_eq(r.status, 405, "%s", line);
        same(field(r, "Allow"), "GET, HEAD");
    }
}

Test(status_page, allow_and_deny_apply_before_the_page)
{
    http::SiteTable t = status_site(http::StatusFormat::text, true);
    cr_assert_eq(ask(t, "GET /server-status HTTP/1.1", &kEcho, "127.0.0.1").status, 200);
    http::Response r = ask(t, "GET /server-status HTTP/1.1", &kEcho, "192.0.2.1");
    cr_assert_eq(r.status, 403);
    cr_assert(r.body.find("text") == std::string::npos);
    cr_assert_eq(ask(t, "GET /server-status?auto HTTP/1.1", &kEcho, "192.0.2.1").status, 403);
}

Test(status_page, without_a_renderer_the_page_is_unavailable)
{
    http::SiteTable t = status_site(http::StatusFormat::text, false);
    cr_assert_eq(ask(t, "GET /server-status HTTP/1.1", nullptr).status, 503);
    http::StatusSource empty;
    cr_assert_eq(ask(t, "GET /server-status HTTP/1.1", &empty).status, 503);
}
