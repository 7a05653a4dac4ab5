#pragma once
/// \file One main-port connection: read a request, route it, hand it to the active mode,
/// watch for the client leaving meanwhile, write the answer. Keep-alive, pipelining in order.

#include <boost/asio/ip/tcp.hpp>

#include "server/front_end.hpp"

namespace stampede {

/// Serves one main-port connection until it closes, on the socket's executor (returns at once).
void start_session(boost::asio::ip::tcp::socket socket, front_end& fe);

}  // namespace stampede
