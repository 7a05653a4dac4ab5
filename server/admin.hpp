#pragma once
/// \file The admin port: the live page (/), its data (/live/data), /metrics, /healthz, /config,
/// the labs' state (/labs), the presenter's annotations (/annotations), on a listener of its
/// own, served by its own thread so it answers in every mode, even while the main port is
/// saturated or blocked. Everything on it is read-only but POST /labs/reset and POST
/// /annotations.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <functional>
#include <string>

#include "handlers/labs/labs.hpp"
#include "server/live.hpp"
#include "server/metrics.hpp"
#include "server/presenter.hpp"

namespace stampede {

/// \brief What the admin port serves. Thread-safety: called on the admin thread only.
struct admin_view {
  metrics& stats;
  std::function<std::string()> config_json;  ///< effective config, secrets masked
  std::function<std::string()> token;        ///< empty: no token required
  live_history& live;                        ///< the live page's samples
  labs& lab;                                 ///< GET /labs, POST /labs/reset
  std::function<std::string_view()> mode;    ///< the active mode, for error bodies
  presenter_board& board;                    ///< GET and POST /annotations
};

/// Serves one admin connection until it closes.
boost::asio::awaitable<void> run_admin_session(boost::asio::ip::tcp::socket socket,
                                               admin_view& view);

}  // namespace stampede
