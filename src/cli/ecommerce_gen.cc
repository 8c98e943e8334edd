#include "cli/ecommerce_gen.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "core/json_writer.h"
#include "core/uuid.h"

namespace embedstream::cli {
namespace {

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
const Words kColors = {"black",    "white", "slate gray", "navy blue", "forest green",
                       "burgundy", "sand",  "sky blue",   "charcoal",  "coral"};
const Words kWarranties = {"one-year", "two-year", "three-year", "limited lifetime"};
const Words kRatings = {"4.2", "4.4", "4.5", "4.6", "4.7", "4.8"};
const Words kAudiences = {
    "new parents", "students",     "busy professionals",      "first-time homeowners",
    "hobbyists",   "grandparents", "anyone who travels often"};
const Words kValues = {"durability",  "comfort",        "simplicity",
                       "performance", "sustainability", "good design"};
const Words kGenericSentences = {
    "Backed by a {warranty} warranty and free returns within 30 days of delivery.",
    "Customers consistently rate it {rating} out of 5 stars for quality and value for money.",
    "Available in {colors} to match your style and the rest of your setup.",
    "Ships in plastic-free, recyclable packaging from our regional warehouse within {n} "
    "business days.",
    "A thoughtful gift for {audience}, and a dependable everyday choice for anyone who values "
    "{value}.",
    "Please check the size and specifications carefully before ordering, since details vary "
    "slightly between variants.",
    "Designed by {brand} with feedback from thousands of customers, it balances {value} with a "
    "fair price.",
    "If anything arrives damaged, our support team will replace it quickly and without extra "
    "questions.",
};

const std::vector<CategorySpec>& Specs() {
  static const std::vector<CategorySpec> specs = {
      {"Electronics",
       170,
       120.0,
       0.9,
       9.99,
       3499.99,
       {"Voltara", "Nexon", "Lumetrix", "Aurion", "Kestrel Audio", "Quantix", "Solvane", "Ardent"},
       {"Wireless", "Smart", "Portable", "Ultra-Slim", "Noise-Cancelling", "4K", "Compact", "Pro"},
       {"Headphones", "Bluetooth Speaker", "Laptop", "Smartwatch", "Tablet", "Monitor", "Webcam",
        "Power Bank", "Router", "Earbuds"},
       {"flagship", "mid-range", "entry-level", "refurbished", "limited edition"},
       {"responsive", "lightweight", "powerful", "sleek", "reliable", "fast", "quiet"},
       {"a 30-hour battery", "USB-C fast charging", "active noise cancellation",
        "a 15.6\" anti-glare display", "Wi-Fi 6 connectivity", "a backlit keyboard",
        "multipoint Bluetooth 5.3", "a 1080p camera with auto-focus"},
       {"remote work", "gaming", "travel", "streaming movies", "video calls", "the daily commute"},
       {"brushed aluminum", "matte polycarbonate", "tempered glass", "recycled plastic"},
       {"{brand} {adj} {noun}", "{brand} {noun} {model}", "{brand} {adj} {noun} {model}"},
       {"The {name} is a {adj} {extra} {noun} built for {use}.",
        "Meet the {name}: {feature} in a {adj} {noun} that is ready for {use}."},
       {"It pairs {feature} with {feature}, so you spend less time charging and more time "
        "using it.",
        "The {material} housing feels solid in the hand and holds up well to everyday wear.",
        "Setup takes only a few minutes with the companion app, which also delivers regular "
        "firmware updates.",
        "Reviewers single out {feature} as the standout, especially for {use}.",
        "Inside the box you will find a charging cable, a quick start guide, and a protective "
        "travel pouch.",
        "Compared with the previous generation it is about {pct} percent lighter and noticeably "
        "faster to respond.",
        "It works with Windows, macOS, Android, and iOS devices without any extra drivers."}},
      {"Books",
       110,
       16.0,
       0.5,
       2.99,
       120.0,
       {"Elena Marsh", "Tomas Reyes", "Priya Natarajan", "Jonah Whitlock", "Mei Lin Zhou",
        "Adaeze Okafor", "Harold Finch", "Sofia Lindqvist"},
       {"Silent", "Forgotten", "Hidden", "Last", "Broken", "Golden", "Midnight", "Distant"},
       {"Harbor", "Garden", "Kingdom", "Algorithm", "River", "Letters", "Orchard", "Frontier",
        "Cartographer", "Winter"},
       {"mystery novel", "historical saga", "practical guide", "memoir", "science fiction thriller",
        "collection of short stories", "cookbook"},
       {"gripping", "moving", "witty", "meticulously researched", "atmospheric",
        "thought-provoking", "beautifully written"},
       {"a richly drawn cast of characters", "short, punchy chapters", "an unforgettable twist",
        "dozens of practical exercises", "full-color illustrations", "an extensive index"},
       {"long flights", "book clubs", "quiet evenings", "the beach", "a weekend getaway"},
       {"hardcover", "paperback", "large-print paperback"},
       {"The {adj} {noun}", "{noun} of the {adj} Sea", "The {noun} and the {adj} Hour",
        "Notes from the {adj} {noun}"},
       {"{name} is a {adj} {extra} by {brand}.",
        "In {name}, {brand} delivers a {adj} {extra} that is perfect for {use}."},
       {"Told through {feature}, the story moves between three generations of one family.",
        "Critics have called it {adj} and {adj}, and it spent {n} weeks on the bestseller list.",
        "This {material} edition includes a new foreword by the author and a reading group "
        "guide.",
        "Readers who enjoy {use} will find it hard to put down once the first chapter ends.",
        "{brand} draws on years of research and interviews to bring every scene vividly to life.",
        "The book is divided into {n} parts, each ending with notes and suggestions for further "
        "reading.",
        "It features {feature} and a closing chapter that ties every thread together."}},
      {"Home & Kitchen",
       130,
       45.0,
       0.8,
       4.99,
       899.99,
       {"Hearthly", "Copperline", "Nestwell", "Oak & Ember", "Casaverde", "Kitchara"},
       {"Nonstick", "Stainless Steel", "Programmable", "Stackable", "Ceramic", "Cast Iron",
        "Digital", "Cordless"},
       {"Skillet", "Blender", "Coffee Maker", "Knife Set", "Air Fryer", "Storage Containers",
        "Dutch Oven", "Stand Mixer", "Kettle", "Cutting Board"},
       {"4-piece", "family-size", "single-serve", "12-cup", "professional-grade"},
       {"sturdy", "easy-to-clean", "versatile", "energy-efficient", "elegant", "space-saving"},
       {"even heat distribution", "a dishwasher-safe design", "seven preset programs",
        "a keep-warm function", "a non-slip base", "a built-in timer"},
       {"weeknight dinners", "meal prep", "entertaining guests", "small apartments",
        "baking on weekends"},
       {"tri-ply stainless steel", "enameled cast iron", "bamboo", "BPA-free plastic",
        "borosilicate glass"},
       {"{brand} {adj} {noun}", "{brand} {extra} {adj} {noun}"},
       {"The {name} is a {adj} {extra} {noun} made for {use}.",
        "Bring {feature} to your kitchen with the {adj} {name}."},
       {"It is made from {material}, which resists stains and keeps its finish for years.",
        "Thanks to {feature}, results are consistent whether you cook for one or for eight.",
        "The handles stay cool to the touch and the lid seals tightly to lock in moisture.",
        "Cleanup is simple: rinse with warm water or place it on the top rack of the dishwasher.",
        "It stores neatly in a standard cabinet, which makes it ideal for {use}.",
        "Home cooks love its {adj} build and {feature}."}},
      {"Clothing",
       140,
       35.0,
       0.6,
       6.99,
       399.99,
       {"Northwind", "Loomwell", "Urban Fable", "Tidewater", "Marlowe & Co", "Pinegrove"},
       {"Classic", "Relaxed-Fit", "Slim", "Organic Cotton", "Merino", "Waterproof", "Quilted",
        "Everyday"},
       {"T-Shirt", "Hoodie", "Jeans", "Rain Jacket", "Sweater", "Chinos", "Dress", "Socks",
        "Flannel Shirt", "Puffer Vest"},
       {"regular-fit", "slim-fit", "oversized", "unisex", "petite"},
       {"soft", "breathable", "warm", "lightweight", "durable", "timeless"},
       {"reinforced seams", "a brushed inner lining", "four-way stretch", "hidden zip pockets",
        "moisture-wicking fabric", "an adjustable hood"},
       {"chilly mornings", "the office", "weekend hikes", "travel", "layering in winter"},
       {"organic cotton", "merino wool", "recycled polyester", "linen", "denim"},
       {"{brand} {adj} {noun}", "{brand} Men's {adj} {noun}", "{brand} Women's {adj} {noun}"},
       {"The {name} is a {adj}, {extra} {noun} cut from {material}.",
        "Stay comfortable from {use} to evening plans in the {adj} {name}."},
       {"It features {feature} and {feature} for all-day comfort.",
        "The {material} fabric is pre-washed to minimize shrinking and feels {adj} from the "
        "first wear.",
        "Machine wash cold with like colors and tumble dry low to keep its shape.",
        "Our model is 6'1\" and wears a size medium; see the size chart for exact measurements.",
        "It layers easily over a tee or under a coat, which makes it a staple for {use}.",
        "Each piece is made in a certified factory that pays fair wages."}},
      {"Sports & Outdoors",
       90,
       55.0,
       0.9,
       7.99,
       1499.99,
       {"Summitcraft", "Trailhead", "Ridgeline", "Aquaverve", "Ironpeak", "Bolt Athletics"},
       {"Ultralight", "Insulated", "Adjustable", "Foldable", "All-Weather", "Trail"},
       {"Tent", "Yoga Mat", "Hiking Backpack", "Water Bottle", "Dumbbell Set", "Sleeping Bag",
        "Trekking Poles", "Bike Helmet", "Running Shoes"},
       {"2-person", "40-liter", "3-season", "beginner-friendly", "competition-grade"},
       {"rugged", "packable", "grippy", "weatherproof", "comfortable", "stable"},
       {"a ventilated mesh back panel", "double-wall vacuum insulation", "quick-lock adjustment",
        "a non-slip textured surface", "reflective accents", "a reinforced ripstop shell"},
       {"weekend camping", "trail running", "home workouts", "long day hikes", "cycling commutes"},
       {"ripstop nylon", "aircraft-grade aluminum", "natural rubber", "18/8 stainless steel"},
       {"{brand} {adj} {noun}", "{brand} {extra} {noun}", "{brand} {adj} {noun} {model}"},
       {"The {name} is a {adj} {extra} {noun} designed for {use}.",
        "Whether you are training or exploring, the {adj} {name} keeps up with {use}."},
       {"Built from {material}, it shrugs off rain, mud, and the occasional drop.",
        "It offers {feature} and {feature} without adding noticeable weight.",
        "It packs down small enough to fit in a daypack and sets up in under {n} minutes.",
        "Athletes and weekend explorers alike praise its {adj} feel on {use}.",
        "Every unit is field tested in the mountains before it reaches the shelf."}},
      {"Beauty",
       90,
       22.0,
       0.7,
       3.99,
       249.99,
       {"Luminelle", "Verdana Botanics", "Glowhaus", "Pure Petal", "Maison Aube"},
       {"Hydrating", "Brightening", "Gentle", "Nourishing", "Matte", "Fragrance-Free"},
       {"Face Serum", "Moisturizer", "Cleanser", "Lip Balm", "Sunscreen SPF 50", "Shampoo",
        "Eye Cream", "Body Lotion"},
       {"travel-size", "50 ml", "value-size", "vegan"},
       {"lightweight", "silky", "non-greasy", "soothing", "fast-absorbing"},
       {"hyaluronic acid", "vitamin C", "ceramides", "niacinamide", "cold-pressed jojoba oil",
        "mineral UV filters"},
       {"sensitive skin", "morning routines", "dry winter months", "after the gym"},
       {"recyclable glass bottle", "airless pump", "aluminum tube"},
       {"{brand} {adj} {noun}", "{brand} {noun} with {feature_title}"},
       {"The {name} is a {adj}, {extra} formula made for {use}.",
        "Formulated with {feature}, the {name} leaves skin feeling {adj}."},
       {"Its {adj} texture absorbs quickly and layers well under makeup.",
        "Dermatologist tested, cruelty-free, and made without parabens or sulfates.",
        "It comes in a {material} that keeps the formula fresh to the last drop.",
        "Apply a small amount to clean skin and massage gently until fully absorbed.",
        "In a four-week study, {pct} percent of users reported visibly smoother skin."}},
      {"Toys & Games",
       80,
       25.0,
       0.7,
       4.99,
       299.99,
       {"Brightblock", "Wonderwhirl", "Tinker Tales", "Playvale", "Gamewright Grove"},
       {"Magnetic", "Wooden", "Interactive", "Glow-in-the-Dark", "Deluxe", "Junior"},
       {"Building Set", "Puzzle", "Board Game", "Plush Bear", "Remote Control Car", "Science Kit",
        "Card Game", "Dollhouse"},
       {"500-piece", "family", "STEM", "2-player", "cooperative"},
       {"colorful", "educational", "sturdy", "imaginative", "hilarious"},
       {"rounded, child-safe edges", "over {n}0 pieces", "rechargeable batteries",
        "a step-by-step illustrated guide", "non-toxic water-based paints"},
       {"rainy afternoons", "family game night", "birthday parties", "road trips"},
       {"sustainably harvested beech wood", "BPA-free plastic", "soft recycled fleece"},
       {"{brand} {adj} {noun}", "{brand} {extra} {noun}"},
       {"The {name} is a {adj} {extra} {noun} for ages {n} and up.",
        "Make {use} more fun with the {adj} {name}."},
       {"It includes {feature} and {feature}, so little hands can play without frustration.",
        "Made from {material}, it is built to survive years of enthusiastic play.",
        "Games last about {n}0 minutes, short enough for a school night.",
        "Parents and teachers like how it builds problem-solving and fine motor skills.",
        "Everything stores neatly in the sturdy box when playtime is over."}},
      {"Grocery",
       80,
       9.0,
       0.6,
       0.99,
       79.99,
       {"Harvest Lane", "Golden Acre", "Blue Orchard", "Wildroot", "Terra Pantry"},
       {"Organic", "Roasted", "Gluten-Free", "Cold-Brew", "Raw", "Sparkling", "Whole Grain"},
       {"Coffee Beans", "Olive Oil", "Granola", "Green Tea", "Almond Butter", "Pasta",
        "Dark Chocolate", "Honey", "Trail Mix"},
       {"12 oz", "family-size", "single-origin", "pack of 6", "low-sugar"},
       {"rich", "fresh", "nutty", "smooth", "wholesome", "bright"},
       {"no artificial flavors", "a resealable pouch", "fair trade certification",
        "small-batch roasting", "non-GMO ingredients"},
       {"busy mornings", "healthy snacking", "holiday baking", "weeknight cooking"},
       {"compostable bag", "glass jar", "recyclable tin"},
       {"{brand} {adj} {noun}", "{brand} {adj} {noun}, {extra}"},
       {"The {name} is a {adj} {extra} pantry staple for {use}.",
        "Our {adj} {name} is made with {feature}."},
       {"It has a {adj}, {adj} flavor that works as well on its own as it does in recipes.",
        "Packed in a {material} to keep it fresh after opening.",
        "Sourced from family farms and packed within {n} days of harvest.",
        "Store in a cool, dry place and enjoy within six months of opening.",
        "Contains tree nuts; produced in a facility that also processes wheat and soy."}},
      {"Automotive",
       50,
       40.0,
       1.0,
       4.99,
       999.99,
       {"Roadmaster", "Torquewell", "Autovant", "Gearline", "Highway Hawk"},
       {"Heavy-Duty", "Universal", "All-Season", "Digital", "Magnetic", "LED"},
       {"Floor Mats", "Jump Starter", "Tire Inflator", "Dash Cam", "Phone Mount", "Seat Covers",
        "Wiper Blades", "Car Vacuum"},
       {"12V", "universal-fit", "2-pack", "truck and SUV"},
       {"durable", "easy-to-install", "compact", "weather-resistant", "reliable"},
       {"a 2000-amp peak current", "automatic shut-off", "a 4K front camera with night vision",
        "a one-touch locking arm", "custom-trimmable edges"},
       {"road trips", "winter driving", "daily commutes", "off-road adventures"},
       {"all-weather rubber", "reinforced ABS", "waterproof neoprene"},
       {"{brand} {adj} {noun}", "{brand} {noun} {model}"},
       {"The {name} is a {adj} {extra} accessory for {use}.",
        "Keep your vehicle ready for {use} with the {adj} {name}."},
       {"It offers {feature} and installs in minutes with no tools required.",
        "Made from {material}, it handles heat, cold, and road salt year after year.",
        "Check your vehicle's make, model, and year against the fit guide before ordering.",
        "Drivers appreciate its {adj} design and {feature}."}},
      {"Garden",
       60,
       30.0,
       0.8,
       2.99,
       699.99,
       {"Greenthumb", "Meadowbright", "Rootwise", "Bloomfield", "Fernway"},
       {"Raised", "Self-Watering", "Expandable", "Solar", "Ergonomic", "Heirloom"},
       {"Garden Hose", "Planter", "Pruning Shears", "Seed Kit", "Bird Feeder", "Compost Bin",
        "Path Lights", "Garden Kneeler"},
       {"50 ft", "set of 3", "galvanized", "balcony-size"},
       {"hardy", "rust-resistant", "lightweight", "easy-to-assemble", "attractive"},
       {"UV-stabilized resin", "a built-in water reservoir", "sharp bypass blades",
        "dusk-to-dawn sensors", "a ventilated lid"},
       {"vegetable beds", "small balconies", "spring planting", "backyard wildlife"},
       {"cedar wood", "powder-coated steel", "recycled plastic"},
       {"{brand} {adj} {noun}", "{brand} {extra} {adj} {noun}"},
       {"The {name} is a {adj} {extra} helper for {use}.",
        "Grow more with less effort using the {adj} {name}."},
       {"It features {feature}, so plants stay healthy even when you are away for a few days.",
        "Built from {material}, it weathers sun, frost, and rain without cracking or fading.",
        "Assembly takes about {n}0 minutes with the included hardware.",
        "Gardeners love how it makes {use} simpler and more rewarding.",
        "It comes with a planting calendar and care tips for {n} common vegetables."}},
  };
  return specs;
}

constexpr std::array<std::string_view, 5> kEventTypes = {"view", "add_to_cart", "purchase",
                                                         "wishlist", "remove_from_cart"};
constexpr std::array<uint32_t, 5> kEventTypeWeights = {600, 200, 80, 70, 50};
// Sentences per description, 1..8 (weights out of 100): mostly short, a long tail.
constexpr std::array<uint32_t, 8> kSentenceWeights = {12, 16, 18, 16, 12, 10, 8, 8};
// Share of a session's events in the category it browses most.
constexpr double kSessionCategoryStickiness = 0.7;

// Distributions built only on the engine's raw output (fixed by the standard),
// so a seed gives the same values with every standard library.
uint64_t UniformIndex(std::mt19937_64& rng, uint64_t n) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;  // reject the biased tail
  for (;;) {
    const uint64_t x = rng();
    if (x < limit) return x % n;
  }
}

double Uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

// Approximately standard normal (Irwin-Hall: 12 uniforms), arithmetic only.
double StandardNormal(std::mt19937_64& rng) {
  double sum = 0;
  for (int i = 0; i < 12; ++i) sum += Uniform01(rng);
  return sum - 6.0;
}

template <size_t N>
size_t Weighted(std::mt19937_64& rng, const std::array<uint32_t, N>& weights) {
  uint64_t total = 0;
  for (uint32_t w : weights) total += w;
  uint64_t x = UniformIndex(rng, total);
  for (size_t i = 0; i < N; ++i) {
    if (x < weights[i]) return i;
    x -= weights[i];
  }
  return N - 1;
}

// Trials until the first success with mean `mean`, capped.
uint64_t Geometric(std::mt19937_64& rng, double mean, uint64_t cap) {
  const double p = 1.0 / std::max(mean, 1.0);
  uint64_t n = 1;
  while (n < cap && Uniform01(rng) >= p) ++n;
  return n;
}

std::string_view Pick(std::mt19937_64& rng, const Words& words) {
  return words[UniformIndex(rng, words.size())];
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string Capitalised(std::string s) {
  if (!s.empty() && s[0] >= 'a' && s[0] <= 'z') s[0] = static_cast<char>(s[0] - 'a' + 'A');
  return s;
}

std::string FormatCents(int64_t cents) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%lld.%02lld", static_cast<long long>(cents / 100),
                static_cast<long long>(cents % 100));
  return buf;
}

// What a template's placeholders expand to for one product.
struct ProductWords {
  const CategorySpec* spec;
  std::string_view brand, name_adjective, noun, extra;
  std::string name;  // empty while the name itself is being built
};

std::string Expand(std::mt19937_64& rng, std::string_view tmpl, const ProductWords& p) {
  std::string out;
  out.reserve(tmpl.size() + 64);
  size_t i = 0;
  while (i < tmpl.size()) {
    const size_t open = tmpl.find('{', i);
    if (open == std::string_view::npos) {
      out.append(tmpl.substr(i));
      break;
    }
    const size_t close = tmpl.find('}', open);
    out.append(tmpl.substr(i, open - i));
    const std::string_view key = tmpl.substr(open + 1, close - open - 1);
    i = close + 1;
    const CategorySpec& s = *p.spec;
    if (key == "name") {
      out += p.name;
    } else if (key == "brand") {
      out += p.brand;
    } else if (key == "noun") {
      out += p.name.empty() ? std::string(p.noun) : Lower(p.noun);
    } else if (key == "extra") {
      out += p.extra;
    } else if (key == "adj") {
      out += p.name.empty() ? p.name_adjective : Pick(rng, s.adjectives);
    } else if (key == "feature") {
      out += Expand(rng, Pick(rng, s.features), p);
    } else if (key == "feature_title") {
      out += Pick(rng, s.features);
    } else if (key == "use") {
      out += Pick(rng, s.uses);
    } else if (key == "material") {
      out += Pick(rng, s.materials);
    } else if (key == "model") {
      out.push_back(static_cast<char>('A' + UniformIndex(rng, 26)));
      out += std::to_string(100 * (1 + UniformIndex(rng, 9)) + 10 * UniformIndex(rng, 10));
    } else if (key == "colors") {
      const size_t first = UniformIndex(rng, kColors.size());
      out += kColors[first];
      out += ", ";
      out += kColors[(first + 1) % kColors.size()];
      out += " and ";
      out += kColors[(first + 2) % kColors.size()];
    } else if (key == "warranty") {
      out += Pick(rng, kWarranties);
    } else if (key == "rating") {
      out += Pick(rng, kRatings);
    } else if (key == "audience") {
      out += Pick(rng, kAudiences);
    } else if (key == "value") {
      out += Pick(rng, kValues);
    } else if (key == "n") {
      out += std::to_string(2 + UniformIndex(rng, 7));
    } else if (key == "pct") {
      out += std::to_string(10 + UniformIndex(rng, 31));
    }
  }
  return out;
}

}  // namespace

std::span<const std::string_view> EcommerceGenerator::Categories() {
  static const std::vector<std::string_view> names = [] {
    std::vector<std::string_view> v;
    for (const auto& s : Specs()) v.push_back(s.name);
    return v;
  }();
  return names;
}

std::span<const std::string_view> EcommerceGenerator::EventTypes() { return kEventTypes; }

std::string EcommerceGenerator::FormatTimestampMs(int64_t unix_ms) {
  using namespace std::chrono;
  const sys_time<milliseconds> tp{milliseconds{unix_ms}};
  const auto day = floor<days>(tp);
  const year_month_day ymd{day};
  const hh_mm_ss hms{tp - day};
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ",
                static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                static_cast<unsigned>(ymd.day()), static_cast<int>(hms.hours().count()),
                static_cast<int>(hms.minutes().count()), static_cast<int>(hms.seconds().count()),
                static_cast<int>(hms.subseconds().count()));
  return buf;
}

EcommerceGenerator::EcommerceGenerator(const EcommerceGenOptions& options)
    : options_(options), rng_(options.seed), clock_ms_(options.base_time_ms) {
  options_.users = std::max<size_t>(options_.users, 1);
  options_.products = std::max(options_.products, Specs().size());  // every category has some
  options_.sessions_active = std::max<size_t>(options_.sessions_active, 1);
  options_.event_gap_ms_max = std::max<int64_t>(options_.event_gap_ms_max, 0);
  BuildCatalog();
  sessions_.resize(options_.sessions_active);
}

void EcommerceGenerator::BuildCatalog() {
  const auto& specs = Specs();
  category_products_.assign(specs.size(), {});
  catalog_.reserve(options_.products);
  product_json_.reserve(options_.products);
  const std::string id_prefix = "ecommerce/product/" + std::to_string(options_.seed) + "/";
  for (size_t i = 0; i < options_.products; ++i) {
    const size_t c = i % specs.size();
    const CategorySpec& s = specs[c];
    ProductWords words{&s,
                       Pick(rng_, s.brands),
                       Pick(rng_, s.name_adjectives),
                       Pick(rng_, s.nouns),
                       Pick(rng_, s.extras),
                       ""};
    EcommerceProduct p;
    p.id = FormatUuid(UuidV5(EmbedstreamNamespace(), id_prefix + std::to_string(i)));
    p.category = std::string(s.name);
    p.name = Expand(rng_, Pick(rng_, s.name_templates), words);
    words.name = p.name;

    // An intro, then distinct sentences from the category's and the shared pool.
    const size_t sentences = 1 + Weighted(rng_, kSentenceWeights);
    std::vector<std::string_view> pool = s.sentences;
    pool.insert(pool.end(), kGenericSentences.begin(), kGenericSentences.end());
    p.description = Capitalised(Expand(rng_, Pick(rng_, s.intros), words));
    for (size_t k = 1; k < sentences && k - 1 < pool.size(); ++k) {
      const size_t j = k - 1 + UniformIndex(rng_, pool.size() - (k - 1));
      std::swap(pool[k - 1], pool[j]);
      p.description += ' ';
      p.description += Capitalised(Expand(rng_, pool[k - 1], words));
    }

    // Log-normal around the category median; most prices end in .99.
    const double dollars = std::clamp(
        s.price_median * std::exp(s.price_sigma * StandardNormal(rng_)), s.price_min, s.price_max);
    int64_t cents = std::llround(dollars * 100.0);
    if (cents >= 500 && Uniform01(rng_) < 0.6) cents = cents / 100 * 100 - 1;
    p.price_cents = std::max<int64_t>(cents, 1);

    JsonWriter w;
    w.BeginObject()
        .Key("id")
        .String(p.id)
        .Key("name")
        .String(p.name)
        .Key("description")
        .String(p.description)
        .Key("category")
        .String(p.category)
        .Key("price")
        .Raw(FormatCents(p.price_cents))  // always two decimals: 12.50, not 12.5
        .EndObject();
    product_json_.push_back(w.Take());
    category_products_[c].push_back(i);
    catalog_.push_back(std::move(p));
  }

  // Popularity: a shuffled order per category, Zipf weights by rank.
  category_cdf_.assign(specs.size(), {});
  for (size_t c = 0; c < specs.size(); ++c) {
    auto& order = category_products_[c];
    for (size_t k = order.size(); k > 1; --k) std::swap(order[k - 1], order[UniformIndex(rng_, k)]);
    double total = 0;
    for (size_t r = 0; r < order.size(); ++r) {
      const double rank = static_cast<double>(r + 1);
      // s = 1 (the default) stays exact division, identical on every libm.
      total += options_.product_zipf_s == 1.0 ? 1.0 / rank
                                              : 1.0 / std::pow(rank, options_.product_zipf_s);
      category_cdf_[c].push_back(total);
    }
  }
}

size_t EcommerceGenerator::PickCategory() {
  const auto& specs = Specs();
  uint64_t total = 0;
  for (const auto& s : specs) total += s.weight_permille;
  uint64_t x = UniformIndex(rng_, total);
  for (size_t c = 0; c < specs.size(); ++c) {
    if (x < specs[c].weight_permille) return c;
    x -= specs[c].weight_permille;
  }
  return specs.size() - 1;
}

const EcommerceProduct& EcommerceGenerator::PickProduct(size_t category) {
  const auto& cdf = category_cdf_[category];
  const double x = Uniform01(rng_) * cdf.back();
  const size_t r = static_cast<size_t>(std::upper_bound(cdf.begin(), cdf.end(), x) - cdf.begin());
  return catalog_[category_products_[category][std::min(r, cdf.size() - 1)]];
}

EcommerceGenerator::Session& EcommerceGenerator::PickSession() {
  Session& s = sessions_[UniformIndex(rng_, sessions_.size())];
  if (s.events_left == 0) {
    s.id = ++sessions_started_;
    // Skewed towards low user numbers (density ~ 1/sqrt): some users come back often.
    const double u = Uniform01(rng_);
    const auto users = static_cast<double>(options_.users);
    s.user = 1 + std::min<uint64_t>(options_.users - 1, static_cast<uint64_t>(users * u * u));
    s.category = PickCategory();
    s.events_left = Geometric(rng_, options_.session_events_mean, 50);
  }
  --s.events_left;
  return s;
}

EcommerceEvent EcommerceGenerator::NextEvent() {
  const uint64_t seq = sequence_++;
  Session& session = PickSession();
  const size_t category =
      Uniform01(rng_) < kSessionCategoryStickiness ? session.category : PickCategory();
  const EcommerceProduct& product = PickProduct(category);
  const std::string_view event_type = kEventTypes[Weighted(rng_, kEventTypeWeights)];
  // Drawn even with wall_clock so the rest of the stream does not change.
  clock_ms_ += static_cast<int64_t>(
      UniformIndex(rng_, static_cast<uint64_t>(options_.event_gap_ms_max) + 1));
  int64_t ts_ms = clock_ms_;
  if (options_.wall_clock) {
    using namespace std::chrono;
    ts_ms = duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  }

  EcommerceEvent ev;
  ev.event_id =
      FormatUuid(UuidV5(EmbedstreamNamespace(), "ecommerce/event/" + std::to_string(options_.seed) +
                                                    "/" + std::to_string(seq)));
  ev.event_type = event_type;
  ev.product = &product;
  JsonWriter w;
  w.BeginObject()
      .Key("event_id")
      .String(ev.event_id)
      .Key("timestamp")
      .String(FormatTimestampMs(ts_ms))
      .Key("user_id")
      .String("user" + std::to_string(session.user))
      .Key("event_type")
      .String(event_type)
      .Key("product")
      .Raw(product_json_[static_cast<size_t>(&product - catalog_.data())])
      .Key("session_id")
      .String("session" + std::to_string(session.id))
      .EndObject();
  ev.json = w.Take();
  return ev;
}

}  // namespace embedstream::cli
