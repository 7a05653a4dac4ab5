#include "server/session.hpp"

#include "server/session_impl.hpp"

namespace stampede {

template class session<tcp_connection>;

void start_session(boost::asio::ip::tcp::socket socket, front_end& fe, completion_lane& lane) {
  std::make_shared<session<tcp_connection>>(tcp_connection(std::move(socket)), fe, lane)->start();
}

}  // namespace stampede
