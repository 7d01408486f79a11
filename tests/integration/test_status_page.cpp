// test_status_page.cpp - the HTTP status page as a person, a program and a
// monitoring plugin read it: the real daemon (its workers sandboxed), a
// location with `status = ...`, requests over loopback, and the figures
// checked against the requests the test made and the workers it can see.
#include <criterion/criterion.h>

#include <map>
#include <string>

#include "harness.hpp"

using namespace itest;

TestSuite(status_page, .init = setup, .fini = cleanup, .timeout = 60);

namespace {

bool contains(const std::string& haystack, const std::string& needle)
{
    return haystack.find(needle) != std::string::npos;
}

// Three status locations, one of them open only to an address block the
// test never connects from.
const std::string kSites =
    "sandbox = true;\n"
    "sites = ( { locations = (\n"
    "  { path = \"= /status\"; status = \"text\"; allow = [ \"127.0.0.0/8\" ]; deny = [ \"0.0.0.0/0\" ]; },\n"
    "  { path = \"= /status.json\"; status = \"json\"; },\n"
    "  { path = \"= /server-status\"; status = \"auto\"; },\n"
    "  { path = \"/private-status\"; status = \"text\"; allow = [ \"192.0.2.0/24\" ]; deny = [ \"0.0.0.0/0\" ]; }\n"
    "); } );\n";

Daemon start_daemon()
{
    Options o;
    o.extra = kSites;
    Daemon d = Daemon::prepare(o);
    cr_assert(d.start(), "daemon did not start:\n%s", d.log_tail().c_str());
    D_ASSERT(d, d.wait_workers(2), "workers did not start");
    return d;
}

// A short report read as the plugins read it: "Key: value" per line.
std::map<std::string, std::string> parse_auto(const std::string& body)
{
    std::map<std::string, std::string> fields;
    for (const std::string& line : lines_of(body)) {
        std::size_t colon = line.find(": ");
        if (colon != std::string::npos)
            fields[line.substr(0, colon)] = line.substr(colon + 2);
    }
    return fields;
}

}  // namespace

Test(status_page, text_page_shows_the_master_and_every_worker) {
    Daemon d = start_daemon();
    Response r = http_get(d.port, "/status");
    D_ASSERT(d, r.ok && r.status == 200, "GET /status: %s %s", r.error.c_str(), r.status_line.c_str());
    D_ASSERT(d, r.header("content-type") == "text/plain; charset=utf-8", "%s",
             r.header("content-type").c_str());
    D_ASSERT(d, r.header("cache-control") == "no-store", "%s", r.header("cache-control").c_str());
    D_ASSERT(d, contains(r.body, "master pid " + std::to_string(d.pid) + "\n"), "%s", r.body.c_str());
    D_ASSERT(d, contains(r.body, "configuration: " + d.conf + ", loaded "), "%s", r.body.c_str());
    D_ASSERT(d, contains(r.body, "generation: 1\n"), "%s", r.body.c_str());
    for (pid_t w : d.workers())
        D_ASSERT(d, contains(r.body, format("\n%8d    1 ", int(w))), "worker %d missing:\n%s", int(w),
                 r.body.c_str());
    D_ASSERT(d, contains(r.body, "seccomp") && contains(r.body, "GET /status HTTP/1.1"),
             "sandboxed worker serving its own request not shown:\n%s", r.body.c_str());

    Response head = http_get(d.port, "/status", "HEAD");
    D_ASSERT(d, head.ok && head.status == 200 && head.body.empty(), "HEAD: %s", head.error.c_str());
    D_ASSERT(d, !head.header("content-length").empty(), "HEAD without Content-Length");
    Response post = http_get(d.port, "/status", "POST");
    D_ASSERT(d, post.ok && post.status == 405 && post.header("allow") == "GET, HEAD",
             "POST: %s allow '%s'", post.status_line.c_str(), post.header("allow").c_str());
    NO_SANITIZER_REPORTS();
}

Test(status_page, json_page_has_the_shape_of_status_json) {
    Daemon d = start_daemon();
    Response x = http_get(d.port, "/x.txt");
    D_ASSERT(d, x.ok && x.status == 200, "GET /x.txt: %s", x.error.c_str());
    // A worker adds a response's bytes once it has sent it, which may be
    // just after the client has read it: ask until /x.txt's bytes are in.
    Response r;
    int asked = 0;
    std::size_t earlier = 0;   // body bytes of the pages asked before this one
    bool counted = wait_until([&] {
        earlier += r.body.size();
        r = http_get(d.port, "/status.json");
        ++asked;
        std::size_t at = r.body.find("\"totals\":{");
        at = at == std::string::npos ? at : r.body.find("\"bytes\":", at);
        return r.ok && r.status == 200 && at != std::string::npos &&
               std::stoul(r.body.substr(at + 8)) >= x.body.size();
    });
    D_ASSERT(d, counted && r.ok && r.status == 200, "GET /status.json: %s %s\n%s", r.error.c_str(),
             r.status_line.c_str(), r.body.c_str());
    D_ASSERT(d, r.header("content-type") == "application/json", "%s", r.header("content-type").c_str());
    D_ASSERT(d, r.header("cache-control") == "no-store", "%s", r.header("cache-control").c_str());
    write_file(d.path("page.json"), r.body);
    std::string pids;
    for (pid_t w : d.workers())
        pids += (pids.empty() ? "" : ",") + std::to_string(w);
    std::string check =
        "import json,sys; s=json.load(open(sys.argv[1])); "
        "want=set(int(p) for p in sys.argv[3].split(',')); "
        "got=set(w['pid'] for w in s['workers']); "
        "assert s['pid']==int(sys.argv[2]) and s['generation']==1 and s['config_file']==sys.argv[4], s; "
        "assert want <= got, (want, got); "
        "t=s['totals']; size=int(sys.argv[5]); "
        "assert t['requests']==1+int(sys.argv[6]), s; "
        "assert size <= t['bytes'] <= size+int(sys.argv[7]), s; "
        "assert t['requests']==sum(w['requests'] for w in s['workers']), s; "
        "assert s['pool']['workers']==len(s['workers']) and s['pool']['max']==8, s; "
        "me=[w for w in s['workers'] if w['request']=='GET /status.json HTTP/1.1']; "
        "assert me and me[-1]['client']=='127.0.0.1', s; "
        "assert set(s) >= {'version','config_loaded','uptime','draining','stopping','parking','parked'}, s";
    RunResult py = run({"/usr/bin/python3", "-c", check, d.path("page.json"), std::to_string(d.pid),
                        pids, d.conf, std::to_string(x.body.size()), std::to_string(asked),
                        std::to_string(earlier)},
                       d.dir);
    D_ASSERT(d, py.status == 0, "JSON page: %s\n%s", py.err.c_str(), r.body.c_str());
    NO_SANITIZER_REPORTS();
}

Test(status_page, auto_page_parses_as_a_plugin_reads_it) {
    Daemon d = start_daemon();
    const int n = 5;
    const std::size_t size = 10000;
    write_file(d.path("www/big.txt"), std::string(size, 'b'));
    for (int i = 0; i < n; ++i) {
        Response r = http_get(d.port, "/big.txt");
        D_ASSERT(d, r.ok && r.status == 200 && r.body.size() == size, "GET /big.txt: %s", r.error.c_str());
    }
    // The URL plugins use: ?auto, here on the text location.  A worker adds
    // a response's bytes once it has sent it, which may be just after the
    // client has read it: ask until the five files' bytes are in.
    Response r;
    std::map<std::string, std::string> f;
    int asked = 0;
    bool counted = wait_until([&] {
        r = http_get(d.port, "/status?auto");
        ++asked;
        f = parse_auto(r.body);
        return r.ok && r.status == 200 && !f["Total kBytes"].empty() &&
               std::stoul(f["Total kBytes"]) >= n * size / 1024;
    });
    D_ASSERT(d, counted, "GET /status?auto: %s %s\n%s", r.error.c_str(), r.status_line.c_str(),
             r.body.c_str());
    D_ASSERT(d, r.header("content-type").starts_with("text/plain"), "%s", r.header("content-type").c_str());
    D_ASSERT(d, r.header("cache-control") == "no-store", "%s", r.header("cache-control").c_str());
    // Every GET so far, this one included: its worker counts it before answering.
    unsigned long accesses = std::stoul(f["Total Accesses"]);
    D_ASSERT(d, accesses == unsigned(n + asked), "want %d accesses:\n%s", n + asked, r.body.c_str());
    // The earlier status pages are a few hundred bytes each.
    unsigned long kbytes = std::stoul(f["Total kBytes"]);
    D_ASSERT(d, kbytes <= (n * size + asked * 1024) / 1024, "%s", r.body.c_str());
    double per_request = std::stod(f["BytesPerReq"]);
    D_ASSERT(d, per_request * accesses >= kbytes * 1024.0 * 0.999 &&
                    per_request * accesses < (kbytes + 1) * 1024.0 * 1.001,
             "BytesPerReq against Total kBytes:\n%s", r.body.c_str());
    long uptime = std::stol(f["Uptime"]);
    D_ASSERT(d, uptime >= 0 && f["ServerUptimeSeconds"] == f["Uptime"], "%s", r.body.c_str());
    if (uptime > 0)
        D_ASSERT(d, f["ReqPerSec"] == format("%g", double(accesses) / double(uptime)), "%s", r.body.c_str());
    std::string board = f["Scoreboard"];
    D_ASSERT(d, board.size() == 8, "one letter per slot up to workers.max: '%s'", board.c_str());
    int live = 0, busy = 0;
    for (char c : board) {
        live += c != '.';
        busy += c == 'R' || c == 'W' || c == 'K' || c == 'G';
        D_ASSERT(d, std::string("._SRWKG").find(c) != std::string::npos, "letter %c", c);
    }
    D_ASSERT(d, live >= 2 && live <= 8, "%d letters: %s", live, board.c_str());
    D_ASSERT(d, busy >= 1 && f["BusyWorkers"] == std::to_string(busy), "the serving worker: %s",
             r.body.c_str());
    D_ASSERT(d, std::stoi(f["BusyWorkers"]) + std::stoi(f["IdleWorkers"]) == live, "%s", r.body.c_str());

    // The auto location answers the same format without the query.
    Response a = http_get(d.port, "/server-status");
    D_ASSERT(d, a.ok && a.status == 200, "GET /server-status: %s", a.error.c_str());
    std::map<std::string, std::string> g = parse_auto(a.body);
    D_ASSERT(d, g["Total Accesses"] == std::to_string(n + asked + 1), "%s", a.body.c_str());
    D_ASSERT(d, g["ServerMPM"] == "prefork" && g.count("IdleWorkers"), "%s", a.body.c_str());
    NO_SANITIZER_REPORTS();
}

Test(status_page, allow_and_deny_refuse_the_page) {
    Daemon d = start_daemon();
    for (const char* path : {"/private-status", "/private-status?auto"}) {
        Response r = http_get(d.port, path);
        D_ASSERT(d, r.ok && r.status == 403, "GET %s: %s %s", path, r.error.c_str(), r.status_line.c_str());
        D_ASSERT(d, !contains(r.body, "master pid") && !contains(r.body, "Total Accesses"),
                 "refused page leaks the status:\n%s", r.body.c_str());
    }
    Response ok = http_get(d.port, "/status");
    D_ASSERT(d, ok.ok && ok.status == 200, "an allowed address is refused: %s", ok.status_line.c_str());
    NO_SANITIZER_REPORTS();
}

Test(status_page, config_test_names_the_line_of_a_bad_format) {
    Options o;
    o.extra = "sites = ( { locations = (\n  { path = \"/s\";\n    status = \"html\"; } ); } );\n";
    Daemon d = Daemon::prepare(o);
    RunResult r = run({daemon_binary(), "-t", "-c", d.conf}, d.dir);
    cr_assert_eq(r.status, 1, "exit %d, stdout: %s", r.status, r.out.c_str());
    cr_assert(contains(r.err, "preforkd.conf:") &&
                  contains(r.err, ": locations.status must be one of off, text, json, auto"),
              "%s", r.err.c_str());
    o.extra = kSites;
    d.write_config(o);
    RunResult dump = run({daemon_binary(), "-T", "-c", d.conf}, d.dir);
    cr_assert_eq(dump.status, 0, "-T exit %d: %s", dump.status, dump.err.c_str());
    cr_assert(contains(dump.out, "status = \"auto\";") && contains(dump.out, "status = \"json\";"),
              "%s", dump.out.c_str());
}
