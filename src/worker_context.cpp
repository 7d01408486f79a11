// worker_context.cpp - building a generation's state, and a worker's
// context from it.
//
// worker_context() runs in the child, after fork(): the child's copy of the
// master's state is about to be abandoned (worker::run() never returns), so
// what the worker needs is taken from it as it is, descriptors included,
// and the rest is closed by the worker's own start-up.
#include "preforkd/worker_context.hpp"

#include <ctime>

#include "preforkd/access_log.hpp"

namespace preforkd::master {

Serving build_serving(config::Config config)
{
    Serving s;
    s.config = std::move(config);
    s.identity = privileges::resolve(s.config);
    s.mime = std::make_shared<const http::MimeMap>(http::load_mime_types(s.config.http.mime_types));
    s.sites = site_setup::build(s.config, *s.mime);
    s.access_log = access_log::open(s.config);
    s.loaded_at = ::time(nullptr);
    return s;
}

// The configuration is the one source of every value here: each field is
// named, none is left to the struct's own initialiser.
connection::Settings settings_of(const config::Config& c)
{
    const config::Http& h = c.http;
    return connection::Settings{
        .limits = {.max_header_size = std::size_t(h.max_header_size),
                   .max_headers = std::size_t(h.max_headers),
                   .max_discard_body = std::uint64_t(h.max_discard_body)},
        .keepalive_timeout_ms = h.keepalive_timeout * 1000,
        .keepalive_requests = h.keepalive_requests,
        .header_timeout_ms = h.header_timeout * 1000,
        .header_timeout_max_ms = h.header_timeout_max * 1000,
        .header_min_rate = h.header_min_rate,
        .adaptive_keepalive = h.adaptive_keepalive,
        .send_timeout_ms = h.send_timeout * 1000,
        .parking = h.parking,
    };
}

worker::Context worker_context(Serving& serving, ListenerSet& listeners, parker::Queues& queues,
                               scoreboard::Board* board, int slot, std::uint32_t generation,
                               Fd channel)
{
    const config::Config& config = serving.config;
    worker::Context c;
    if (config.http.parking)
        c.park = std::move(queues.park_worker);
    c.ready = std::move(queues.ready_worker);
    // In the order of config.listen, so an index names its options too.
    for (listener::Listener& l : listeners.all()) {
        c.listen_options.push_back(config::listen_options_of(config, c.listeners.size()));
        c.listeners.push_back(std::move(l.fd));
    }
    c.board = board;
    c.slot = slot;
    c.generation = generation;
    c.log_epoch = board->log_epoch.load();
    c.access_log = std::move(serving.access_log);
    c.access_log_path = config.log.access_log;
    c.log_mode = access_log::mode_of(config);
    c.log_format = access_log::format_of(config.log.access_format);
    c.log_priority = access_log::syslog_priority(config);
    c.log_buffer = std::size_t(config.log.access_buffer);
    c.log_flush_seconds = config.log.access_flush;
    c.channel = std::move(channel);
    c.max_requests = config.workers.max_requests;
    c.identity = serving.identity;
    c.sandbox = config.sandbox;
    c.settings = settings_of(config);
    c.sites = &*serving.sites.table;
    c.tls = serving.sites.tls;
    for (site_setup::LogFile& l : serving.sites.logs)
        c.site_logs.push_back({std::move(l.fd), l.path, l.format});
    return c;
}

}  // namespace preforkd::master
