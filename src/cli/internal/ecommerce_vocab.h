#pragma once
// The words EcommerceGenerator (cli/ecommerce_gen.h) builds its catalog from:
// per category, brands, nouns, sentence templates and price ranges; and the
// lists every category shares. Constant data, built on first use.

#include <cstdint>
#include <string_view>
#include <vector>

namespace embedstream::cli::internal {

using Words = std::vector<std::string_view>;

// One category's vocabulary. In names and sentences: {brand}, {noun} and
// {extra} are fixed per product; {adj}, {feature}, {use}, {material} are
// drawn per occurrence.
struct CategorySpec {
  std::string_view name;
  uint32_t weight_permille;                                // share of events
  double price_median, price_sigma, price_min, price_max;  // dollars, log-normal
  Words brands;
  Words name_adjectives;  // Title Case, in names
  Words nouns;            // Title Case, in names; lower-cased in sentences
  Words extras;           // a per-product detail (genre, fit, flavour...)
  Words adjectives;       // lower case, in sentences
  Words features;
  Words uses;
  Words materials;
  Words name_templates;  // {model}: a letter and a number
  Words intros;          // the first sentence
  Words sentences;
};

// Shared by every category; sentences may follow any category's intro.
extern const Words kColors;
extern const Words kWarranties;
extern const Words kRatings;
extern const Words kAudiences;
extern const Words kValues;
extern const Words kGenericSentences;

// Every category, in a fixed order.
const std::vector<CategorySpec>& Specs();

}  // namespace embedstream::cli::internal
