// test_upgrade.cpp - the in-place upgrade's handover as text: what one image
// encodes the next one decodes exactly, any path survives, and a variable
// that is damaged or from another format is refused rather than half read.
#include <criterion/criterion.h>

#include <algorithm>
#include <string>

#include "preforkd/control.hpp"
#include "preforkd/upgrade.hpp"

namespace upgrade = preforkd::upgrade;

namespace {

upgrade::Handover sample()
{
    upgrade::Handover h;
    h.board_size = 1234567;
    h.board = 5;
    h.control = {6, true, "unix:/run/pre forkd/ctl,1=%"};
    h.client = 7;
    h.pid_file = 8;
    h.pid_path = "/run/preforkd.pid";
    h.previous = 9;
    h.queues[0] = 10;
    h.queues[1] = 11;
    h.queues[2] = 12;
    h.queues[3] = 13;
    h.parker = 4242;
    h.tickets = 18;
    h.generation = 7;
    h.started_at = 1795754400;
    h.started_ms = 98765432;
    h.listeners = {{14, false, "127.0.0.1:8080"}, {15, true, "unix:/run/a b.sock"}};
    h.workers = {{1001, 0, 7, 16, 0, false}, {1002, 3, 6, 17, 5550001, true}};
    h.arguments = {"/usr/sbin/preforkd", "-c", "/etc/preforkd/my conf"};
    return h;
}

}  // namespace

Test(upgrade, a_handover_decodes_to_what_was_encoded)
{
    upgrade::Handover h = sample();
    h.failure = "open(\"/etc/x y\") failed: No such file or directory";
    std::string error;
    std::optional<upgrade::Handover> back = upgrade::decode(upgrade::encode(h), error);
    cr_assert(back, "decode failed: %s", error.c_str());
    cr_expect_eq(back->board_size, h.board_size);
    cr_expect_eq(back->board, 5);
    cr_expect_eq(back->control.fd, 6);
    cr_expect(back->control.created_path);
    cr_expect_str_eq(back->control.canonical.c_str(), "unix:/run/pre forkd/ctl,1=%");
    cr_expect_eq(back->client, 7);
    cr_expect_eq(back->pid_file, 8);
    cr_expect_str_eq(back->pid_path.c_str(), "/run/preforkd.pid");
    cr_expect_eq(back->previous, 9);
    cr_expect(back->queues[0] == 10 && back->queues[3] == 13);
    cr_expect_eq(back->parker, 4242);
    cr_expect_eq(back->tickets, 18);
    cr_expect_eq(back->generation, 7u);
    cr_expect_eq(back->started_at, 1795754400);
    cr_expect_eq(back->started_ms, 98765432);
    cr_assert_eq(back->listeners.size(), 2u);
    cr_expect_str_eq(back->listeners[1].canonical.c_str(), "unix:/run/a b.sock");
    cr_expect(back->listeners[1].created_path && !back->listeners[0].created_path);
    cr_assert_eq(back->workers.size(), 2u);
    cr_expect(back->workers[1].pid == 1002 && back->workers[1].slot == 3 && back->workers[1].generation == 6 &&
              back->workers[1].channel == 17 && back->workers[1].quit_sent_ms == 5550001 && back->workers[1].killed);
    cr_assert_eq(back->arguments.size(), 3u);
    cr_expect_str_eq(back->arguments[2].c_str(), "/etc/preforkd/my conf");
    cr_expect_str_eq(back->failure.c_str(), h.failure.c_str());
}

Test(upgrade, the_encoding_is_one_word_per_item_without_blanks_in_values)
{
    std::string text = upgrade::encode(sample());
    cr_expect(text.find("a b.sock") == std::string::npos, "a blank went through unescaped: %s", text.c_str());
    cr_expect(text.find('\n') == std::string::npos);
    cr_expect(text.rfind("v=1 ", 0) == 0, "no version first: %s", text.c_str());
}

Test(upgrade, every_descriptor_is_listed_once_and_none_that_is_absent)
{
    upgrade::Handover h = sample();
    h.client = -1;
    std::vector<int> fds = upgrade::descriptors(h);
    std::vector<int> want = {5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18};
    std::sort(fds.begin(), fds.end());
    cr_expect(fds == want, "got %zu descriptors", fds.size());
}

Test(upgrade, a_damaged_or_foreign_handover_is_refused)
{
    std::string good = upgrade::encode(sample());
    const std::string bad[] = {
        "",
        "v=2" + good.substr(3),                  // another format
        good + " colour=blue",                   // a word this build does not know
        good + " worker=1,2,3",                  // a short worker
        good + " listen=x,0,127.0.0.1:80",       // a descriptor that is not a number
        good + " arg=%G1",                       // a broken escape
        good.substr(0, good.find(" control=")),  // no control socket, no pid file
    };
    for (const std::string& text : bad) {
        std::string error;
        cr_expect(!upgrade::decode(text, error), "accepted: %s", text.c_str());
        cr_expect(!error.empty(), "refused without a reason: %s", text.c_str());
    }
}

Test(upgrade, the_control_socket_takes_the_upgrade_command)
{
    cr_expect(preforkd::control::parse("upgrade\n") == preforkd::control::Command::upgrade);
    cr_expect(preforkd::control::parse("  UPGRADE \r\n") == preforkd::control::Command::upgrade);
}
