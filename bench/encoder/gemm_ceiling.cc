#include "encoder/gemm_ceiling.h"

#include <chrono>
#include <cstring>
#include <oneapi/dnnl/dnnl.hpp>
#include <vector>

namespace embedstream::bench {

GemmCeiling MeasureGemmCeiling(int64_t rows, int64_t hidden, int64_t ffn, int64_t layers,
                               GemmType type, double min_seconds) {
  using dt = dnnl::memory::data_type;
  using tag = dnnl::memory::format_tag;
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream strm(eng);
  const dt act = type == GemmType::kBF16 ? dt::bf16 : type == GemmType::kInt8 ? dt::u8 : dt::f32;
  const dt wt = type == GemmType::kInt8 ? dt::s8 : act;
  const dt out = type == GemmType::kInt8 ? dt::s32 : dt::f32;
  struct Shape {
    int64_t k, n;
  };
  const Shape shapes[] = {{hidden, 3 * hidden}, {hidden, hidden}, {hidden, ffn}, {ffn, hidden}};
  struct Op {
    dnnl::matmul prim;
    dnnl::memory src, wei, dst;
    double flops;
  };
  std::vector<Op> ops;
  for (const Shape& s : shapes) {
    dnnl::memory::desc src_md({rows, s.k}, act, tag::ab);
    dnnl::memory::desc wei_any({s.k, s.n}, wt, tag::any);
    dnnl::memory::desc dst_md({rows, s.n}, out, tag::ab);
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src_md, wei_any, dst_md), eng);
    Op op{dnnl::matmul(pd), dnnl::memory(src_md, eng), dnnl::memory(pd.weights_desc(), eng),
          dnnl::memory(dst_md, eng), 2.0 * static_cast<double>(rows * s.k * s.n)};
    // Non-zero data: zeros can be faster on some hardware.
    std::memset(op.src.get_data_handle(), 0x3c, src_md.get_size());
    std::memset(op.wei.get_data_handle(), 0x3c, pd.weights_desc().get_size());
    ops.push_back(std::move(op));
  }
  auto run_all = [&] {
    for (auto& op : ops) {
      op.prim.execute(strm,
                      {{DNNL_ARG_SRC, op.src}, {DNNL_ARG_WEIGHTS, op.wei}, {DNNL_ARG_DST, op.dst}});
    }
    strm.wait();
  };
  run_all();  // warm-up
  double flops_per_round = 0;
  for (const auto& op : ops) flops_per_round += op.flops;
  const auto t0 = std::chrono::steady_clock::now();
  int rounds = 0;
  double elapsed = 0;
  do {
    run_all();
    ++rounds;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  } while (elapsed < min_seconds);
  GemmCeiling c;
  c.gflops = flops_per_round * rounds / elapsed / 1e9;
  c.flops_per_token = flops_per_round / static_cast<double>(rows) * static_cast<double>(layers);
  c.tokens_per_s = c.gflops * 1e9 / c.flops_per_token;
  return c;
}

}  // namespace embedstream::bench
