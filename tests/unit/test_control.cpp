// test_control.cpp - the control socket's protocol and answers as pure
// functions (command lines in, text out), and one exchange over a socket
// pair with the bounds a slow client meets.
#include <criterion/criterion.h>

#include <string>
#include <sys/socket.h>
#include <unistd.h>

#include "preforkd/config.hpp"
#include "preforkd/control.hpp"
#include "preforkd/scoreboard.hpp"

namespace control = preforkd::control;
using preforkd::Fd;

namespace {

control::Snapshot sample()
{
    control::Snapshot s;
    s.version = "1.2.3";
    s.master = 812;
    s.config_file = "/etc/preforkd/preforkd.conf";
    s.config_loaded = 1795755000;   // 2026-11-27 04:50:00 UTC
    s.started = 1795754400;
    s.uptime = 600;
    s.generation = 3;
    s.draining = {2};
    s.floor = 6;
    s.floor_configured = 5;
    s.max = 64;
    s.parking = true;
    s.parked = 4;
    s.workers = {
        {.pid = 901, .generation = 2, .state = "draining", .seconds = 7, .requests = 10,
         .bytes = 5000, .client = "192.0.2.7:50312", .request = "GET /big.iso HTTP/1.1",
         .sandbox = "seccomp+landlock"},
        {.pid = 902, .generation = 3, .state = "idle", .seconds = 1, .requests = 3, .bytes = 300,
         .client = "", .request = ""},
    };
    return s;
}

bool has(const std::string& text, const std::string& part)
{
    return text.find(part) != std::string::npos;
}

}  // namespace

Test(control, command_lines_parse)
{
    cr_assert(control::parse("status\n") == control::Command::status);
    cr_assert(control::parse("  STATUS \r") == control::Command::status);
    cr_assert(control::parse("status json") == control::Command::status_json);
    cr_assert(control::parse("status   JSON\r") == control::Command::status_json);
    cr_assert(control::parse("reload") == control::Command::reload);
    cr_assert(control::parse("") == control::Command::unknown);
    cr_assert(control::parse("statusjson") == control::Command::unknown);
    cr_assert(control::parse("reload now") == control::Command::unknown);
}

Test(control, text_status_has_the_pool_and_a_line_per_worker)
{
    std::string t = control::render_text(sample());
    cr_assert(has(t, "preforkd 1.2.3, master pid 812\n"), "%s", t.c_str());
    cr_assert(has(t, "configuration: /etc/preforkd/preforkd.conf, loaded 2026-11-27 04:50:00 UTC\n"),
              "%s", t.c_str());
    cr_assert(has(t, "uptime: 600 s"), "%s", t.c_str());
    cr_assert(has(t, "generation: 3 (draining: 2)\n"), "%s", t.c_str());
    cr_assert(has(t, "pool: 2 workers (1 busy, 1 idle), floor 6 (workers.start 5, +1 by TTIN/TTOU), max 64\n"),
              "%s", t.c_str());
    cr_assert(has(t, "parked: 4 connections\n"), "%s", t.c_str());
    cr_assert(has(t, "totals: 13 requests, 5300 bytes"), "%s", t.c_str());
    cr_assert(has(t, "     901    2 draining        7        10         5000  seccomp+landlock  "
                     "192.0.2.7:50312        GET /big.iso HTTP/1.1\n"),
              "%s", t.c_str());
    cr_assert(has(t, "     902    3 idle            1         3          300  none              "
                     "-                      -\n"),
              "%s", t.c_str());
}

Test(control, text_status_after_winch_says_there_are_no_workers)
{
    control::Snapshot s = sample();
    s.workers.clear();
    s.draining.clear();
    s.paused = true;
    std::string t = control::render_text(s);
    cr_assert(has(t, "pool: 0 workers: stopped by SIGWINCH"), "%s", t.c_str());
    cr_assert(has(t, "\nno workers\n"), "%s", t.c_str());
    cr_assert(has(control::summary(s), "0 workers (stopped by SIGWINCH)"));
}

Test(control, json_status_has_every_field)
{
    std::string j = control::render_json(sample());
    cr_assert(j.back() == '\n');
    const char* parts[] = {
        "{\"version\":\"1.2.3\",\"pid\":812,\"config_file\":\"/etc/preforkd/preforkd.conf\"",
        "\"config_loaded\":\"2026-11-27T04:50:00Z\"", "\"uptime\":600", "\"generation\":3",
        "\"draining\":[2]", "\"stopping\":false",
        "\"pool\":{\"workers\":2,\"busy\":1,\"idle\":1,\"floor\":6,\"floor_configured\":5,\"max\":64,\"paused\":false}",
        "\"parking\":true,\"parked\":4", "\"totals\":{\"requests\":13,\"bytes\":5300}",
        "{\"pid\":901,\"generation\":2,\"state\":\"draining\",\"seconds\":7,\"requests\":10,"
        "\"bytes\":5000,\"sandbox\":\"seccomp+landlock\",\"client\":\"192.0.2.7:50312\","
        "\"request\":\"GET /big.iso HTTP/1.1\"}",
        "\"sandbox\":\"none\",\"client\":\"\",\"request\":\"\"}]}\n"};
    for (const char* p : parts)
        cr_assert(has(j, p), "missing %s in %s", p, j.c_str());
}

Test(control, json_strings_are_escaped)
{
    std::string escaped = control::json_string("a\"b\\c\n\x01");
    cr_assert_str_eq(escaped.c_str(), "\"a\\\"b\\\\c\\u000a\\u0001\"");
}

Test(control, systemd_status_line_has_generation_floor_and_draining)
{
    std::string line = control::summary(sample());
    cr_assert_str_eq(line.c_str(),
                     "generation 3: 1 busy, 1 idle workers, floor 6; 13 requests served by live "
                     "workers; draining generation 2; 4 connections parked");
}

Test(control, socket_path_sits_beside_the_pid_file)
{
    cr_assert(control::path_for("/run/preforkd.pid") == "/run/preforkd.ctl");
    cr_assert(control::path_for("/run/x/pid") == "/run/x/pid.ctl");
    preforkd::config::Config c;
    cr_assert(control::path_of(c) == "/run/preforkd.ctl");
    c.control_socket = "/run/other.sock";
    cr_assert(control::path_of(c) == "/run/other.sock");
}

// A client that sends its command gets the answer; one that sends nothing
// is dropped once the read bound passes, and the call returns.
Test(control, one_exchange_and_a_silent_client_is_dropped, .timeout = 10)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    Fd client(sv[1]);
    bool too_long = false;
    cr_assert_eq(write(client.get(), "status json\n", 12), 12);
    std::optional<std::string> line = control::read_line(sv[0], 1000, too_long);
    cr_assert(line && *line == "status json");
    cr_assert(control::write_all(sv[0], "answer\n", 1000));
    char buf[16] = {};
    cr_assert_eq(read(client.get(), buf, sizeof buf), 7);
    std::int64_t before = preforkd::scoreboard::now_ms();
    cr_assert(!control::read_line(sv[0], 200, too_long).has_value());
    cr_assert(!too_long);
    cr_assert_geq(preforkd::scoreboard::now_ms() - before, 150);
    std::string flood(control::kMaxLine + 10, 'x');
    cr_assert_eq(write(client.get(), flood.data(), flood.size()), ssize_t(flood.size()));
    cr_assert(!control::read_line(sv[0], 1000, too_long).has_value());
    cr_assert(too_long);
    close(sv[0]);
}
