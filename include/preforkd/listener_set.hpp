// listener_set.hpp - the master's listening sockets, as one set.
//
// The master owns every listener for its whole life; workers inherit the
// descriptors at fork.  The set is keyed by canonical address, so that a
// reload keeps an unchanged listener (same descriptor, no lost queued
// connection), binds only the addresses that are new, and hands back the
// ones no longer configured for the caller to close when it is done with
// them.  Sockets passed by systemd (or by a previous image of the master)
// are adopted for the address they are bound to instead of binding again.
#pragma once

#include <string>
#include <vector>

#include "preforkd/config.hpp"
#include "preforkd/listener.hpp"

namespace preforkd::master {

class ListenerSet {
public:
    // `inherited`: sockets passed in, used for the listen entries whose
    // address they are bound to; `from` names who passed them, for the log.
    explicit ListenerSet(std::vector<listener::Listener> inherited = {},
                         std::string from = "systemd");
    ListenerSet(ListenerSet&&) = default;
    ListenerSet& operator=(ListenerSet&&) = default;
    ~ListenerSet();

    // Binds (or adopts) every address of `config.listen`, logging "listening
    // on" each; inherited sockets left over are closed with a warning.
    // Throws on the first address that cannot be parsed or bound.
    void open(const config::Config& config);

    // The reload's preparation: binds the addresses of `next` that the set
    // does not hold yet, and returns them.  Throws like open(); what was
    // bound before the throw is closed by the unwinding.
    std::vector<listener::Listener> open_missing(const config::Config& next);

    // The reload's commit: the set becomes `next.listen`, made of the
    // listeners it kept and of `fresh` (from open_missing()).  New addresses
    // are logged "listening on".  Returns the listeners `next` no longer
    // names, and any of `fresh` it does not name, still open: old workers
    // may still accept on them, and a rollback may want them back.
    std::vector<listener::Listener> switch_to(const config::Config& next,
                                              std::vector<listener::Listener> fresh);

    // TCP_DEFER_ACCEPT and blocking mode (listener::tune) for every
    // listener; `epoll_waits` when workers also wait on the parker's queue.
    // A failure is logged, not thrown: the listener still works as it was.
    void tune(const config::Config& config, bool epoll_waits) const;

    // Closes every listener, removing the unix socket files it created.
    void close();
    // In a forked child: drops the descriptors, leaves the files alone.
    void forget() noexcept;

    const std::vector<listener::Listener>& all() const noexcept { return open_; }
    std::vector<listener::Listener>& all() noexcept { return open_; }

private:
    listener::Listener bind_or_adopt(const listener::Address& address, const config::Config& c);

    std::vector<listener::Listener> open_;
    std::vector<listener::Listener> inherited_;
    std::string from_;
};

// "127.0.0.1:8080", "[::1]:8080", "unix:/run/x.sock": a port 0 shows the
// port the kernel chose.
std::string display_name(const listener::Listener& l);

// Closes `listeners`, logging "no longer listening on" each and removing
// the unix socket files they created.
void retire_listeners(std::vector<listener::Listener>& listeners);

}  // namespace preforkd::master
