#include "handlers/router.hpp"

#include <gtest/gtest.h>

namespace stampede {
namespace {

const work_limits limits{1000, 20, 512};

int status_of(std::string_view method, std::string_view target) {
  auto r = route(method, target, limits);
  return r.error ? r.error->status : 200;
}

TEST(RouterTest, routes_each_endpoint) {
  EXPECT_EQ(route("GET", "/work/io?ms=5", limits).handler, handler_id::io);
  EXPECT_EQ(route("GET", "/work/cpu?ms=5", limits).handler, handler_id::cpu);
  EXPECT_EQ(route("GET", "/work/fanout?n=3&ms=5&parallel=1", limits).handler, handler_id::fanout);
  EXPECT_EQ(route("GET", "/healthz", limits).handler, handler_id::healthz);
}

TEST(RouterTest, parses_parameters) {
  auto r = route("GET", "/work/fanout?n=3&ms=5&parallel=1", limits);
  ASSERT_FALSE(r.error);
  EXPECT_EQ(r.params.n, 3);
  EXPECT_EQ(r.params.ms, 5);
  EXPECT_TRUE(r.params.parallel);
}

TEST(RouterTest, percent_encoded_digits_are_decoded) {
  EXPECT_EQ(route("GET", "/work/io?ms=%33", limits).params.ms, 3);
}

TEST(RouterTest, kb_is_validated_against_max_kb) {
  EXPECT_EQ(route("GET", "/work/io?ms=5", limits).params.kb, -1);  // the config's default
  EXPECT_EQ(route("GET", "/work/io?ms=5&kb=512", limits).params.kb, 512);
  EXPECT_EQ(route("GET", "/work/cpu?kb=0", limits).params.kb, 0);
  EXPECT_EQ(route("GET", "/work/fanout?n=2&kb=7", limits).params.kb, 7);
  for (const char* bad : {"/work/io?kb=513", "/work/io?kb=-1", "/work/io?kb=x",
                          "/work/io?kb=1&kb=1", "/healthz?kb=1"}) {
    auto r = route("GET", bad, limits);
    ASSERT_TRUE(r.error) << bad;
    EXPECT_EQ(r.error->status, 400) << bad;
  }
}

TEST(RouterTest, unknown_path_is_404) {
  EXPECT_EQ(status_of("GET", "/nope"), 404);
}

TEST(RouterTest, wrong_method_is_405_with_allow) {
  auto r = route("POST", "/work/io?ms=1", limits);
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->status, 405);
  EXPECT_EQ(r.error->allow, "GET, HEAD");
  EXPECT_EQ(r.error->reason, "method_not_allowed");
}

TEST(RouterTest, bad_numbers_are_400) {
  for (auto target : {"/work/io?ms=-1", "/work/io?ms=abc", "/work/io?ms=", "/work/io?ms=1.5",
                      "/work/io?ms=99999999999999999999", "/work/io?ms=+5", "/work/io?ms=5%00",
                      "/work/io?ms=1001", "/work/fanout?n=0&ms=1", "/work/fanout?n=21&ms=1",
                      "/work/fanout?n=2&ms=1&parallel=yes"}) {
    EXPECT_EQ(status_of("GET", target), 400) << target;
  }
}

TEST(RouterTest, repeated_and_unknown_parameters_are_400) {
  EXPECT_EQ(status_of("GET", "/work/io?ms=1&ms=2"), 400);
  EXPECT_EQ(status_of("GET", "/work/io?ms=1&x=2"), 400);
  EXPECT_EQ(status_of("GET", "/healthz?ms=1"), 400);
}

TEST(RouterTest, sequential_fanout_total_is_limited) {
  EXPECT_EQ(status_of("GET", "/work/fanout?n=20&ms=100"), 400);
  EXPECT_EQ(status_of("GET", "/work/fanout?n=20&ms=100&parallel=1"), 200);
}

TEST(RouterTest, malformed_target_is_400) {
  EXPECT_EQ(status_of("GET", "http://example.com/work/io"), 400);
  EXPECT_EQ(status_of("GET", "/work/io?ms=%zz"), 400);
}

TEST(RouterTest, routes_the_labs_with_their_variants) {
  auto c = route("GET", "/lab/counter?n=7&variant=atomic", limits);
  ASSERT_FALSE(c.error);
  EXPECT_EQ(c.handler, handler_id::lab);
  EXPECT_EQ(c.params.lab, lab_kind::counter);
  EXPECT_EQ(c.params.variant, 2);
  EXPECT_EQ(c.params.n, 7);
  auto t = route("GET", "/lab/transfer?from=d&to=a&ms=5&variant=ordered", limits);
  ASSERT_FALSE(t.error);
  EXPECT_EQ(t.params.lab, lab_kind::transfer);
  EXPECT_EQ(t.params.from, 3);
  EXPECT_EQ(t.params.to, 0);
  EXPECT_EQ(t.params.variant, 1);
  EXPECT_EQ(status_of("GET", "/lab/reserve?variant=racy"), 200);
  EXPECT_EQ(status_of("GET", "/lab/leak?ms=5&variant=fixed"), 200);
  EXPECT_EQ(status_of("GET", "/lab/nested?n=3&ms=5&variant=inline"), 200);
}

TEST(RouterTest, bad_lab_parameters_are_400_naming_the_parameter) {
  struct bad_case {
    const char* target;
    const char* names;
  };
  for (auto [target, names] : std::initializer_list<bad_case>{
           {"/lab/counter?n=5", "variant"},
           {"/lab/counter?n=5&variant=sloppy", "variant"},
           {"/lab/counter?n=0&variant=racy", "n must"},
           {"/lab/counter?n=10001&variant=racy", "n must"},
           {"/lab/reserve?variant=racy&n=2", "unknown parameter: n"},
           {"/lab/leak?ms=-1&variant=leaky", "ms must"},
           {"/lab/leak?ms=5&variant=leaky&variant=fixed", "variant given twice"},
           {"/lab/transfer?from=a&to=a&variant=ordered", "from and to"},
           {"/lab/transfer?from=a&to=e&variant=ordered", "to must be one of"},
           {"/lab/transfer?to=b&variant=ordered", "from is required"},
           {"/lab/nested?n=21&ms=5&variant=nested", "n must"}}) {
    auto r = route("GET", target, limits);
    ASSERT_TRUE(r.error) << target;
    EXPECT_EQ(r.error->status, 400) << target;
    EXPECT_NE(r.error->message.find(names), std::string::npos) << target << " " << r.error->message;
  }
  EXPECT_EQ(status_of("GET", "/lab/unknown?variant=racy"), 404);
  EXPECT_EQ(status_of("POST", "/lab/counter?variant=racy"), 405);
}

TEST(RouterTest, criticality_takes_the_four_names_in_any_case_and_nothing_else) {
  work_params p;
  EXPECT_EQ(p.crit, criticality::critical);  // the default, with no header
  for (auto [value, want] : {std::pair{"CRITICAL_PLUS", criticality::critical_plus},
                             std::pair{"critical", criticality::critical},
                             std::pair{"Sheddable_Plus", criticality::sheddable_plus},
                             std::pair{"SHEDDABLE", criticality::sheddable}}) {
    EXPECT_FALSE(apply_criticality(value, p)) << value;
    EXPECT_EQ(p.crit, want) << value;
  }
  EXPECT_EQ(to_string(criticality::sheddable_plus), "SHEDDABLE_PLUS");
  EXPECT_EQ(to_string(criticality::critical_plus), "CRITICAL_PLUS");
  for (const char* bad : {"", "URGENT", "CRITICAL ", "SHEDDABLE-PLUS", "0"}) {
    auto e = apply_criticality(bad, p);
    ASSERT_TRUE(e) << bad;
    EXPECT_EQ(e->status, 400);
    EXPECT_EQ(e->reason, "bad_parameter");
  }
  EXPECT_EQ(p.crit, criticality::sheddable);  // a bad value leaves it as it was
}

}  // namespace
}  // namespace stampede
