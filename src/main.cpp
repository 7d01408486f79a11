// main.cpp - the command line's one catch for start-up errors.
//
// Order matters: the configuration is loaded and checked while stderr is
// still the user's terminal; the pid file is checked before binding, so a
// second start says "already running" rather than "address in use"; only
// then does the process detach.  From there on, failures travel to the
// launcher through the verdict pipe.
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <signal.h>
#include <syslog.h>
#include <unistd.h>

#include "preforkd/cli.hpp"
#include "preforkd/config.hpp"
#include "preforkd/control.hpp"
#include "preforkd/site_setup.hpp"
#include "preforkd/tls/context.hpp"
#include "preforkd/daemon.hpp"
#include "preforkd/listener.hpp"
#include "preforkd/log.hpp"
#include "preforkd/master.hpp"
#include "preforkd/notify.hpp"
#include "preforkd/pidfile.hpp"
#include "preforkd/proctitle.hpp"
#include "preforkd/signals.hpp"
#include "preforkd/upgrade.hpp"

#ifndef PREFORKD_VERSION
#define PREFORKD_VERSION "0.0.0"
#endif

using namespace preforkd;

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

void print_errors(const std::vector<std::string>& errors)
{
    for (const std::string& e : errors)
        std::cerr << e << '\n';
}

// A relative -c must survive the chdir("/") of daemonizing and reloads.
std::string absolute(const std::string& path)
{
    char buf[PATH_MAX];
    if (!path.empty() && path[0] != '/' && ::getcwd(buf, sizeof buf))
        return std::string(buf) + "/" + path;
    return path;
}

// `-s reload`, `-s upgrade` and `-s status` talk to the master's control
// socket (control.hpp); the other words are signals.  Either way the master
// is first found through its locked pid file, so that "not running" reads
// the same for every word.
constexpr int kReloadWaitMs = 60000;   // a reload checks the configuration in a child
constexpr int kStatusWaitMs = 10000;
// The -t check and the new generation's first worker, each with its bound.
constexpr int kUpgradeWaitMs = upgrade::kCheckTimeoutMs + upgrade::kMaxCommitSeconds * 1000 + 30000;

int ask_master(const cli::Options& o, const std::string& control_path)
{
    bool reload = o.signal_word == "reload", upgrading = o.signal_word == "upgrade";
    std::string command = reload ? "reload" : upgrading ? "upgrade" : o.json ? "status json" : "status";
    int wait_ms = reload ? kReloadWaitMs : upgrading ? kUpgradeWaitMs : kStatusWaitMs;
    std::string error;
    std::optional<std::string> answer = control::ask(control_path, command, wait_ms, error);
    if (!answer) {
        std::cerr << "preforkd: " << error << '\n';
        return kExitFailure;
    }
    if (answer->empty()) {
        std::cerr << "preforkd: the master closed " << control_path << " without an answer\n";
        return kExitFailure;
    }
    if (!reload && !upgrading && answer->rfind("error: ", 0) != 0) {
        std::cout << *answer;
        return kExitOk;
    }
    std::string text = answer->substr(0, answer->find('\n'));
    if (text.rfind("ok: ", 0) == 0) {
        std::cout << "preforkd: " << command << ": " << text.substr(4) << '\n';
        return kExitOk;
    }
    if (text.rfind("failed: ", 0) == 0 && upgrading)
        std::cerr << "preforkd: upgrade failed, the running binary stays: " << text.substr(8) << '\n';
    else if (text.rfind("failed: ", 0) == 0)
        std::cerr << "preforkd: reload failed, the running configuration stays: " << text.substr(8)
                  << '\n';
    else
        std::cerr << "preforkd: " << text << '\n';
    return kExitFailure;
}

int send_signal(const cli::Options& o, const std::string& pid_file,
                const std::string& control_path)
{
    int number = signals::from_word(o.signal_word);
    try {
        pid_t pid = pidfile::running_master(pid_file);
        if (o.signal_word == "status" || number == SIGHUP || number == SIGUSR2)
            return ask_master(o, control_path);
        if (::kill(pid, number) != 0)
            throw sys_error("kill", std::to_string(pid));
    } catch (const std::exception& e) {
        std::cerr << "preforkd: " << e.what() << '\n';
        return kExitFailure;
    }
    return kExitOk;
}

int check(const config::Config& c, const cli::Options& o)
{
    std::vector<std::string> problems = config::check_environment(c);
    for (std::string& p : site_setup::check(c))
        problems.push_back(std::move(p));
    if (!problems.empty()) {
        print_errors(problems);
        return kExitFailure;
    }
    tls::Report certificates = tls::check(c);
    for (const std::string& w : certificates.warnings)
        std::cerr << "preforkd: warning: " << w << '\n';
    if (o.dump) {
        std::cout << config::dump(c);
        for (const std::string& line : certificates.certificates)
            std::cout << "# certificate " << line << '\n';
    } else {
        std::cout << "configuration ok\n";
    }
    return kExitOk;
}

// An image started by an in-place upgrade that cannot even load its
// configuration returns to the previous one (upgrade.hpp), which keeps
// serving; only if that fails too does the process end here.
int give_back(const std::vector<std::string>& problems)
{
    const upgrade::Handover* h = upgrade::received();
    std::string why;
    for (const std::string& p : problems)
        why += (why.empty() ? "" : "; ") + p;
    if (h && h->failure.empty())
        log::err("could not return to the previous binary: " + upgrade::roll_back(*h, why));
    return kExitFailure;
}

int serve(config::Config c, const cli::Options& o)
{
    log::open(c.log.facility_code, c.log.level_priority, o.foreground);
    bool handed_over = upgrade::received() != nullptr;
    std::vector<std::string> problems = config::check_environment(c);
    for (std::string& p : site_setup::check(c))
        problems.push_back(std::move(p));
    if (!problems.empty()) {
        for (const std::string& p : problems)
            log::err(p);
        if (!o.foreground)
            print_errors(problems);
        return handed_over ? give_back(problems) : kExitFailure;
    }
    pid_t other = 0;
    // A handed-over pid file is locked by this very process.
    if (!handed_over && pidfile::is_locked(c.pid_file, other)) {
        std::string msg = "preforkd is already running (pid " + std::to_string(other) +
                          ", pid file " + c.pid_file + ")";
        log::err(msg);
        if (!o.foreground)
            std::cerr << "preforkd: " << msg << '\n';
        return kExitFailure;
    }
    Fd verdict;
    try {
        // Both are tied to this process (LISTEN_PID) or its supervisor:
        // take them before detaching changes the pid.
        notify::init();
        std::vector<listener::Listener> inherited = listener::inherited();
        if (!o.foreground && !handed_over)
            verdict = daemon::detach();
        master::Master m(std::move(c), o, verdict, std::move(inherited));
        return m.run();
    } catch (const std::exception& e) {
        log::err(e.what());
        daemon::report(verdict, false, std::string("preforkd: ") + e.what());
        return kExitFailure;
    }
}

}  // namespace

int main(int argc, char** argv)
{
    upgrade::init(argc > 0 ? argv[0] : nullptr);
    proctitle::init(argc, argv);
    cli::Result r = cli::parse(argc, argv);
    if (!r.error.empty()) {
        std::cerr << "preforkd: " << r.error << "\n" << cli::usage();
        return kExitUsage;
    }
    cli::Options& o = r.options;
    if (o.help) {
        std::cout << cli::usage();
        return kExitOk;
    }
    if (o.version) {
        std::cout << "preforkd " PREFORKD_VERSION "\n";
        return kExitOk;
    }
    if (!o.pid_file.empty())
        o.pid_file = absolute(o.pid_file);
    // With -p the configuration is not read: the control socket is the
    // one beside that pid file.
    if (!o.signal_word.empty() && !o.pid_file.empty())
        return send_signal(o, o.pid_file, control::path_for(o.pid_file));
    o.config_file = absolute(o.config_file);
    // An image started by an upgrade reads its handover before anything
    // that could crash, so that a crash returns to the previous image.
    if (o.signal_word.empty() && !o.test && !o.dump)
        upgrade::received();
    config::Config c;
    try {
        c = config::load_file(o.config_file);
    } catch (const config::ConfigError& e) {
        print_errors(e.messages());
        if (o.signal_word.empty() && !o.test && !o.dump && upgrade::received()) {
            log::open(LOG_DAEMON, LOG_INFO, o.foreground);
            return give_back(e.messages());
        }
        return kExitFailure;
    }
    if (!o.pid_file.empty())
        c.pid_file = o.pid_file;
    if (!o.signal_word.empty())
        return send_signal(o, c.pid_file, control::path_of(c));
    if (o.test || o.dump)
        return check(c, o);
    return serve(std::move(c), o);
}
