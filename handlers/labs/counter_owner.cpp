#include "handlers/labs/counter_owner.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <mutex>
#include <thread>

namespace stampede {

namespace asio = boost::asio;

/// A message: one increment and the wait its sender is parked on; empty: a reset.
using message = std::shared_ptr<lab_wait>;

struct counter_owner::channel {
  asio::io_context io{1};
  // Bounded as a Go channel is; a send that finds it full is queued by Asio until there is room.
  asio::experimental::concurrent_channel<void(boost::system::error_code, message)> line{io, 1024};
  std::once_flag once;
  std::thread thread;
};

namespace {
/// The owner: the only code that touches `count`.
asio::awaitable<void> own(
    asio::experimental::concurrent_channel<void(boost::system::error_code, message)>& line,
    std::atomic<std::int64_t>& published) {
  std::int64_t count = 0;
  for (;;) {
    auto [ec, m] = co_await line.async_receive(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;  // closed: the server is going
    count = m ? count + 1 : 0;
    published.store(count);
    if (m) m->end(wait_end::fired);
  }
}
}  // namespace

counter_owner::counter_owner(wait_list& waits)
    : waits_(waits), channel_(std::make_unique<channel>()) {}

counter_owner::~counter_owner() {
  channel_->line.close();
  channel_->io.stop();
  if (channel_->thread.joinable()) channel_->thread.join();
}

counter_owner::channel& counter_owner::started() {
  std::call_once(channel_->once, [this] {
    asio::co_spawn(channel_->io, own(channel_->line, published_), asio::detached);
    channel_->thread = std::thread([this] { channel_->io.run(); });
  });
  return *channel_;
}

job<wait_end> counter_owner::add(const work_context& ctx) {
  auto applied = std::make_shared<lab_wait>(waits_);
  started().line.async_send(boost::system::error_code{}, applied, [](boost::system::error_code) {});
  co_return co_await applied->wait(ctx, std::nullopt);
}

void counter_owner::reset() {
  if (!channel_->thread.joinable()) return;  // no owner yet: the count is 0
  channel_->line.async_send(boost::system::error_code{}, message{},
                            [](boost::system::error_code) {});
}

}  // namespace stampede
