// listener_set.cpp - binding, adopting, carrying over and closing listeners.
//
// A listener removed by a reload is handed back open rather than closed at
// once: the old generation accepts on it until it is retired, and a reload
// that is rolled back needs it again.  Its owner closes it with
// retire_listeners() when the reload is over.
#include "preforkd/listener_set.hpp"

#include <algorithm>
#include <stdexcept>
#include <unistd.h>

#include "preforkd/log.hpp"

namespace preforkd::master {
namespace {

listener::Address address_of(const std::string& text)
{
    listener::ParseResult p = listener::parse(text);
    if (!p.address)
        throw std::runtime_error(p.error);
    return *p.address;
}

void close_one(listener::Listener& l)
{
    if (l.created_path && l.fd)
        ::unlink(l.address.path.c_str());
    l.fd.reset();
}

}  // namespace

ListenerSet::ListenerSet(std::vector<listener::Listener> inherited, std::string from)
    : inherited_(std::move(inherited)), from_(std::move(from))
{
}

ListenerSet::~ListenerSet()
{
    close();
}

void ListenerSet::open(const config::Config& config)
{
    for (const std::string& text : config.listen) {
        open_.push_back(bind_or_adopt(address_of(text), config));
        log::notice("listening on " + display_name(open_.back()));
    }
    // A socket systemd passed for an address the configuration does not
    // name would queue connections nobody accepts: better closed, and said.
    for (const listener::Listener& l : inherited_)
        log::warning("socket " + l.address.canonical + " passed by " + from_ + " is not in listen; closing it");
    inherited_.clear();
}

std::vector<listener::Listener> ListenerSet::open_missing(const config::Config& next)
{
    std::vector<listener::Listener> fresh;
    for (const std::string& text : next.listen) {
        listener::Address a = address_of(text);
        bool kept = std::any_of(open_.begin(), open_.end(), [&](const listener::Listener& l) {
            return l.address.canonical == a.canonical;
        });
        if (!kept)
            fresh.push_back(bind_or_adopt(a, next));
    }
    return fresh;
}

std::vector<listener::Listener> ListenerSet::switch_to(const config::Config& next,
                                                       std::vector<listener::Listener> fresh)
{
    std::vector<listener::Listener> merged;
    for (const std::string& text : next.listen) {
        std::string canonical = address_of(text).canonical;
        auto same = [&](const listener::Listener& l) { return l.fd && l.address.canonical == canonical; };
        auto old = std::find_if(open_.begin(), open_.end(), same);
        if (old != open_.end()) {
            merged.push_back(std::move(*old));
            continue;
        }
        // Always found when `fresh` came from open_missing(), and when a
        // rollback hands back what the reload dropped; an address in
        // neither is left out rather than trusted.
        auto added = std::find_if(fresh.begin(), fresh.end(), same);
        if (added == fresh.end()) {
            log::err("no socket for " + canonical + " after the reload; not listening on it");
            continue;
        }
        merged.push_back(std::move(*added));
        log::notice("listening on " + display_name(merged.back()));
    }
    std::vector<listener::Listener> dropped;
    for (std::vector<listener::Listener>* from : {&open_, &fresh})
        for (listener::Listener& l : *from)
            if (l.fd)
                dropped.push_back(std::move(l));
    open_ = std::move(merged);
    return dropped;
}

// Applied after every change of the listener set or the configuration.  A
// failure leaves the listener working as it was, so it is said, not fatal.
void ListenerSet::tune(const config::Config& config, bool epoll_waits) const
{
    for (const listener::Listener& l : open_) {
        try {
            // Workers that also wait on the parker's ready queue wait in
            // epoll, where a listener must not block.
            listener::tune(l, config.defer_accept, open_.size() == 1 && !epoll_waits);
        } catch (const std::exception& e) {
            log::warning(e.what());
        }
    }
}

void ListenerSet::close()
{
    for (listener::Listener& l : open_)
        close_one(l);
    open_.clear();
}

void ListenerSet::forget() noexcept
{
    for (listener::Listener& l : open_)
        l.fd.reset();
    for (listener::Listener& l : inherited_)
        l.fd.reset();
}

// Socket activation: a socket systemd bound for this address is used as is
// (systemd keeps its copy, so it survives our restarts); otherwise we bind.
listener::Listener ListenerSet::bind_or_adopt(const listener::Address& address,
                                              const config::Config& c)
{
    auto same = [&](const listener::Listener& l) { return l.address.canonical == address.canonical; };
    auto it = std::find_if(inherited_.begin(), inherited_.end(), same);
    if (it == inherited_.end())
        return listener::open(address,
                              listener::unix_access(c.unix_mode_bits, c.unix_owner, c.unix_group));
    listener::Listener l = std::move(*it);
    inherited_.erase(it);
    log::info("using the socket passed by " + from_ + " for " + address.canonical);
    return l;
}

std::string display_name(const listener::Listener& l)
{
    const listener::Address& a = l.address;
    if (a.family == listener::Family::unix_path || a.port != 0)
        return a.canonical;
    std::string port = std::to_string(listener::bound_port(l.fd.get()));
    return a.family == listener::Family::inet6 ? "[" + a.host + "]:" + port : a.host + ":" + port;
}

void retire_listeners(std::vector<listener::Listener>& listeners)
{
    for (listener::Listener& l : listeners) {
        if (!l.fd)
            continue;
        log::notice("no longer listening on " + display_name(l));
        close_one(l);
    }
    listeners.clear();
}

}  // namespace preforkd::master
