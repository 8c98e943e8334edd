#include "app/model_command.h"

#include <cstdio>

#include "core/json_writer.h"
#include "core/logging.h"

namespace embedstream::app {

void ModelCommand::Register(CLI::App& parent) {
  auto* model = parent.add_subcommand("model", "Inspect the embedding model");
  model->require_subcommand(1);
  auto* info = model->add_subcommand(
      "info", "Load the model and print its name, dimensions, layers, precision and CPU features");
  encoder.AddTo(*info);
  info->add_flag("--json", json, "Print one JSON object instead of text");
  info->callback([this] { std::exit(RunInfo()); });
}

int ModelCommand::RunInfo() {
  auto enc = encoder.LoadEncoder();
  if (!enc) {
    GetLogger("app")->error("{}", enc.error().ToString());
    return 2;
  }
  const auto& c = (*enc)->config();
  const auto& i = (*enc)->info();
  if (json) {
    JsonWriter w;
    w.BeginObject()
        .Key("model_name")
        .String(i.model_name)
        .Key("model_dir")
        .String(i.model_dir.string())
        .Key("model_type")
        .String(c.model_type)
        .Key("embedding_dimension")
        .Int(c.hidden_size)
        .Key("layers")
        .Int(c.num_layers)
        .Key("heads")
        .Int(c.num_heads)
        .Key("intermediate_size")
        .Int(c.intermediate_size)
        .Key("vocab_size")
        .Int(c.vocab_size)
        .Key("max_seq_length")
        .Uint(i.max_seq_length)
        .Key("pooling")
        .String(model::PoolingModeName(c.pooling))
        .Key("normalize")
        .Bool(c.normalize)
        .Key("precision")
        .String(model::PrecisionName(i.precision))
        .Key("requested_precision")
        .String(model::PrecisionName(i.requested_precision))
        .Key("backend")
        .String(i.backend)
        .Key("kernel")
        .String(i.kernel)
        .Key("precision_auto")
        .String(i.auto_choice)
        .Key("threads")
        .Int(i.threads)
        .Key("batch_tokens_max")
        .Uint(i.batch_tokens_max)
        .Key("cpu_features")
        .String(i.cpu_features)
        .EndObject();
    std::printf("%s\n", w.str().c_str());
    return 0;
  }
  std::printf("model:            %s\n", i.model_name.c_str());
  std::printf("directory:        %s\n", i.model_dir.string().c_str());
  std::printf("architecture:     %s, %lld layers, hidden %lld, %lld heads, ffn %lld, vocab %lld\n",
              c.model_type.c_str(), static_cast<long long>(c.num_layers),
              static_cast<long long>(c.hidden_size), static_cast<long long>(c.num_heads),
              static_cast<long long>(c.intermediate_size), static_cast<long long>(c.vocab_size));
  std::printf("dimensions:       %lld\n", static_cast<long long>(c.hidden_size));
  std::printf("max_seq_length:   %zu tokens (incl. [CLS]/[SEP])\n", i.max_seq_length);
  std::printf("pooling:          %s%s\n", model::PoolingModeName(c.pooling),
              c.normalize ? ", L2-normalised" : "");
  std::printf("precision:        %s (requested %s)\n", model::PrecisionName(i.precision),
              model::PrecisionName(i.requested_precision));
  std::printf("backend:          %s, %d threads, batch budget %zu tokens\n", i.backend.c_str(),
              i.threads, i.batch_tokens_max);
  std::printf("kernel:           %s\n", i.kernel.c_str());
  if (!i.auto_choice.empty()) std::printf("precision auto:   %s\n", i.auto_choice.c_str());
  std::printf("cpu features:     %s\n", i.cpu_features.c_str());
  return 0;
}

}  // namespace embedstream::app
