#include "server/run_task.hpp"

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <optional>

namespace stampede {

namespace asio = boost::asio;

asio::awaitable<void> run_task(execution_policy& p, std::shared_ptr<task> t) {
  auto initiation = [&p, t](auto handler) {
    using handler_type = decltype(handler);
    auto slot = asio::get_associated_cancellation_slot(handler);
    // A tracked executor keeps the I/O context alive while the task runs elsewhere.
    auto ex = asio::prefer(asio::get_associated_executor(handler),
                           asio::execution::outstanding_work.tracked);
    auto holder = std::make_shared<std::optional<handler_type>>(std::move(handler));
    if (slot.is_connected()) {
      slot.assign([&p, t](asio::cancellation_type type) {
        if (type != asio::cancellation_type::none) p.client_gone(t);
      });
    }
    t->on_done = [holder, ex, slot]() mutable {
      asio::post(ex, [holder, slot]() mutable {
        slot.clear();
        auto h = std::move(**holder);
        holder->reset();
        std::move(h)();
      });
    };
    p.submit(t);
  };
  co_await asio::async_initiate<const asio::use_awaitable_t<>, void()>(std::move(initiation),
                                                                       asio::use_awaitable);
}

}  // namespace stampede
